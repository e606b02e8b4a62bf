"""Turns the hand-written call scripts in ``src/*.calls`` into timeline JSON files.

The scripts are the labelled data: a QA reviewer's judgement of each call is written
by hand on the script (``expect:`` in the header, ``#!`` on a line). This tool only
does the arithmetic of times (utterance length from its characters and a speaking
pace); it never runs the rules engine.

Script format, one call per ``=== call_id`` block::

    === courier_001
    title: 快递延误投诉
    direction: inbound              # inbound | outbound
    started_at: 2024-05-13T10:02:11
    deployment: courier             # rules file: deployments/courier.yaml
    caller: 13800001111
    agent: A1024
    pace: 4.2 4.0                   # agent, customer characters per second (optional)
    related: []                     # related_calls JSON (optional)
    expect: intake.confirm, closing.goodbye     # expected findings without a time
    ring 0                          # event at t=0 (ring N count=5 for an explicit count)
    answered 12
    A +0.5 您好，顺丰快递。           # agent utterance, starting 0.5 s after the last thing ended
    C 喂，你好。                      # no time: 0.6 s after the last thing ended
    A -3 /1.0 嗯                     # starts 3 s before the last thing ended; lasts 1.0 s
    A @120 /6 {db=-9} text           # starts at t=120; lasts 6 s; agent level -9 dBFS
    ~ -0.7 angry                     # emotion sample at the end of the previous utterance
    hold +1                          # events take +d / @t / t
    hangup +2 customer
    A +0.5 …  #! hold.apology        # expected finding at this line's start
    A +0.5 …  #! listen.dead_air@gap # … at the end of the thing before this line
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
SRC = HERE / "src"
EVENT_TYPES = {"ring": "ringing", "ringing": "ringing", "answered": "answered", "hold": "hold", "resume": "resume", "transfer": "transfer", "hangup": "hangup"}
PUNCT = re.compile(r"[\W_]", re.UNICODE)


def speech_chars(text: str) -> int:
    return len(PUNCT.sub("", text))


def parse_time(token: str, cursor: float) -> float:
    if token.startswith("+"):
        return cursor + float(token[1:])
    if token.startswith("-"):
        return cursor - float(token[1:])
    if token.startswith("@"):
        return float(token[1:])
    return float(token)


def build_call(call_id: str, lines: list[str]) -> dict:
    header: dict[str, str] = {}
    events: list[dict] = []
    utterances: list[dict] = []
    emotion: list[dict] = []
    expected: list[dict] = []
    cursor = 0.0
    last_end = 0.0
    pace = {"agent": 4.2, "customer": 4.0}
    for raw in lines:
        line, _, marks = raw.partition("#!")
        line = line.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            if marks.strip():
                raise ValueError(f"{call_id}: expectation on an empty line: {raw!r}")
            continue
        m = re.match(r"^(\w+):\s*(.*)$", line)
        if m and m.group(1) in {"title", "direction", "started_at", "deployment", "caller", "agent", "pace", "related", "expect", "notes"}:
            if m.group(1) == "expect" and "expect" in header:
                header["expect"] += ", " + m.group(2).strip()
            else:
                header[m.group(1)] = m.group(2).strip()
            if m.group(1) == "pace":
                a, c = m.group(2).split()
                pace = {"agent": float(a), "customer": float(c)}
            continue
        tokens = line.split()
        kind = tokens[0]
        start: float
        if kind in ("A", "C"):
            speaker = "agent" if kind == "A" else "customer"
            rest = tokens[1:]
            start = cursor + 0.6
            if rest and re.match(r"^[+\-@]?\d+(\.\d+)?$", rest[0]):
                start = parse_time(rest[0], cursor)
                rest = rest[1:]
            duration = None
            level = None
            while rest and (rest[0].startswith("/") or rest[0].startswith("{")):
                tok = rest.pop(0)
                if tok.startswith("/"):
                    duration = float(tok[1:])
                else:
                    level = float(re.match(r"\{db=(-?\d+(\.\d+)?)\}", tok).group(1))  # type: ignore[union-attr]
            text = " ".join(rest)
            if duration is None:
                duration = max(0.5, round(speech_chars(text) / pace[speaker], 1))
            end = round(start + duration, 2)
            utt = {"speaker": speaker, "start": round(start, 2), "end": end, "text": text}
            if level is not None:
                utt["level_db"] = level
            utterances.append(utt)
            item_start, item_end = start, end
            previous_end = cursor
            cursor = max(cursor, end)
        elif kind == "~":
            valence = float(tokens[1])
            sample = {"t": round(last_end, 2), "valence": valence, "arousal": round(min(1.0, abs(valence) + 0.2), 2)}
            if len(tokens) > 2:
                sample["label"] = tokens[2]
            emotion.append(sample)
            continue
        elif kind in EVENT_TYPES:
            t = parse_time(tokens[1], cursor) if len(tokens) > 1 else cursor
            ev: dict = {"type": EVENT_TYPES[kind], "t": round(t, 2)}
            for tok in tokens[2:]:
                if tok.startswith("count="):
                    ev["ring_count"] = int(tok[6:])
                elif tok in ("agent", "customer", "system"):
                    ev["by"] = tok
                else:
                    ev["target"] = tok
            events.append(ev)
            item_start = item_end = t
            previous_end = cursor
            cursor = max(cursor, t)
        else:
            raise ValueError(f"{call_id}: cannot read line {raw!r}")
        last_end = item_end
        for mark in marks.split():
            rule_id, _, where = mark.partition("@")
            t_exp = previous_end if where == "gap" else item_start
            expected.append({"rule_id": rule_id, "t": round(t_exp, 1)})
    for rule_id in filter(None, (s.strip() for s in header.get("expect", "").split(","))):
        expected.append({"rule_id": rule_id, "t": None})
    out: dict = {
        "title": header.get("title", ""),
        "rules_file": f"deployments/{header['deployment']}.yaml",
        "call_id": call_id,
        "direction": header["direction"],
        "started_at": header["started_at"],
        "agent_id": header.get("agent", "A0001"),
        "caller_number": header.get("caller"),
        "events": events,
        "utterances": sorted(utterances, key=lambda u: (u["start"], u["end"])),
    }
    if emotion:
        out["emotion"] = emotion
    if "related" in header:
        out["related_calls"] = json.loads(header["related"])
    if "notes" in header:
        out["notes"] = header["notes"]
    out["expected"] = sorted(expected, key=lambda e: (e["t"] is None, e["t"] or 0, e["rule_id"]))
    return out


def parse_file(path: Path) -> list[tuple[str, list[str]]]:
    calls: list[tuple[str, list[str]]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("==="):
            calls.append((raw[3:].strip(), []))
        elif calls:
            calls[-1][1].append(raw)
    return calls


def main() -> int:
    written = 0
    for src in sorted(SRC.glob("*.calls")):
        for call_id, lines in parse_file(src):
            data = build_call(call_id, lines)
            (HERE / f"{call_id}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            written += 1
    print(f"wrote {written} timelines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
