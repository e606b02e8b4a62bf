"""Screenshots of callwatch's pages for the README and docs/: the real pages in headless Chromium, against a real
server (the embedded models, a fresh SQLite database) that plays the demo call while the live pages watch.

    python scripts/screenshots.py                  # every page in SHOTS, into docs/screenshots/
    python scripts/screenshots.py --only report    # one page again

Each page is one `Shot` below; a new page (the review page, the trends) is one more entry. A shot taken
`during_call` is opened and signed in before the call starts and taken `at_s` seconds into it; the others
are opened once the call has ended and its second pass is stored, so the report shows what QA will see. A
shot with `prepare` first does through the API what people would have done on the pages (a review begun, a
calibration scored by three reviewers), so the page shows work in progress rather than an empty form.
Needs the test extras (Playwright) and Debian's Chromium (CALLWATCH_CHROMIUM to use another).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, Callable, Literal

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python scripts/screenshots.py` from anywhere
    sys.path.insert(0, str(REPO))

from service.demo.links import sign_in_fragment  # noqa: E402
from service.demo.run import PlayedCall, play_sample  # noqa: E402
from service.demo.server import DEMO_AGENT, SAMPLE_CALL, DemoServer  # noqa: E402
from service.settings import Settings  # noqa: E402

OUT = REPO / "docs" / "screenshots"
CHROMIUM = os.environ.get("CALLWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SUPERVISOR = "wang.li"
REVIEWERS = ("qa.li", "qa.zhou", "qa.chen")  # supervisors' keys here, named as reviewers by the calibration
# Which automatic findings (by place in the call) each reviewer rejects: the first none, the second one that the
# third rejects too (so the majority overrules the automatic report there), the third one more of its own.
REJECTED_BY: tuple[frozenset[int], ...] = (frozenset(), frozenset({1}), frozenset({1, 2}))
Who = Literal["agent", "supervisor", "qa"]


@dataclass(frozen=True)
class Keys:
    agent: str
    supervisor: str
    reviewers: dict[str, str]


@dataclass(frozen=True)
class Api:
    """The running service's REST API, as a person's key reaches it."""

    base_url: str
    keys: Keys
    audited: dict[str, str] = field(default_factory=dict)  # the sample recording's call, once audited

    def __call__(self, method: str, path: str, who: str = SUPERVISOR, body: dict[str, Any] | None = None) -> Any:
        key = self.keys.supervisor if who == SUPERVISOR else self.keys.reviewers[who]
        request = urllib.request.Request(f"{self.base_url}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)


    def recorded_call(self) -> str:
        """The demo's sample audited as a recording (once): the QA pages' player and waveform need the
        recording, which a live call does not keep. Its call id."""
        if "call_id" not in self.audited:
            batch = self("POST", "/v1/audit/batches/paths",
                         body={"paths": [str(SAMPLE_CALL)], "meta": {"agent_id": DEMO_AGENT}})
            deadline = time.monotonic() + 300
            while not batch["finished"]:
                if time.monotonic() > deadline:
                    raise SystemExit("the audit of the sample recording did not finish in 300 s")
                time.sleep(1)
                batch = self("GET", f"/v1/audit/batches/{batch['batch_id']}")
            job = batch["jobs"][0]
            if job["state"] != "done" or not job["call_id"]:
                raise SystemExit(f"the audit of the sample recording failed: {job}")
            self.audited["call_id"] = job["call_id"]
        return self.audited["call_id"]


def begun_review(api: Api, played_call: str) -> dict[str, str]:
    """The sample recording's review under way: its first automatic finding confirmed, its second rejected with
    a reason, one finding the rules missed added with a note; the rest still to decide."""
    call_id = api.recorded_call()
    review = api("POST", f"/v1/qa/calls/{call_id}/review")
    path = f"/v1/qa/reviews/{review['review_id']}"
    decisions = [{"decision": "confirm"}, {"decision": "reject", "reason": "录音里坐席已经说了，识别有误"}]
    for finding, decision in zip(review["findings"], decisions):
        api("POST", f"{path}/findings/{finding['finding_id']}/decision", body=decision)
    api("POST", f"{path}/findings", body={"rule_id": "complaint.empathy_first", "t": 12.0,
                                          "note": "客户说明来意时没有先表示理解"})
    return {"call_id": call_id}


def scored_calibration(api: Api, played_call: str) -> dict[str, str]:
    """The sample recording sent to three reviewers, each of whom has scored it differently and submitted."""
    call_id = api.recorded_call()
    made = api("POST", "/v1/qa/calibrations", body={"call_id": call_id, "reviewers": list(REVIEWERS),
                                                     "note": "开场与共情的判定是否一致"})
    calibration = f"/v1/qa/my-calibrations/{made['calibration_id']}"
    for place, reviewer in enumerate(REVIEWERS):
        mine = api("GET", calibration, reviewer)
        automatic = [f for f in mine["findings"] if f["source"] == "automatic"]
        for index, finding in enumerate(automatic):
            rejects = index in REJECTED_BY[place]
            decision = {"decision": "reject", "reason": "听录音不成立"} if rejects else {"decision": "confirm"}
            api("POST", f"{calibration}/findings/{finding['finding_id']}/decision", reviewer, decision)
        if place == 1:
            api("POST", f"{calibration}/findings", reviewer,
                {"rule_id": "complaint.empathy_first", "t": 12.0, "note": "没有先安抚客户"})
        api("POST", f"{calibration}/submit", reviewer)
    return {"call_id": call_id, "calibration_id": made["calibration_id"]}


@dataclass(frozen=True)
class Shot:
    name: str  # the file: OUT/NAME.png
    path: str  # the page; "{call_id}" is the played call's id
    who: Who  # agent and supervisor pages sign in by a link's fragment; QA pages get a supervisor key (bearer)
    ready: str  # a selector that is on the page once it shows what the picture is for
    during_call: bool = False
    at_s: float = 22.0  # during the call: this far into it (the sample is 26 s; a prompt shows from about 1 s)
    click: str | None = None  # clicked before waiting for `ready` (the board follows a call when its row is)
    size: tuple[int, int] = (1366, 768)  # the pages are laid out for a 1366×768 screen
    # After the call, before the page opens: what people do first, through the API; the fields it answers fill
    # the path's placeholders (the call it worked on, a calibration's id).
    prepare: Callable[[Api, str], dict[str, str]] | None = None


SHOTS: tuple[Shot, ...] = (
    Shot("agent-screen", "/agent", "agent", ready="[data-role=prompts] .prompt", during_call=True),
    Shot("supervisor-board", "/supervisor", "supervisor", ready="#detail:not([hidden]) .utt", during_call=True,
         at_s=21.0, click="#calls tr"),
    Shot("report", "/audit/calls/{call_id}", "qa", ready="#transcript .utt", size=(1366, 900)),
    Shot("audit-calls", "/audit/calls", "qa", ready="#calls tbody tr"),
    # The trends of the played call: one week, one agent (the page's default range, the twelve weeks to today).
    Shot("qa-trends", "/qa/trends", "qa", ready='#page[data-drawn="1"]', size=(1366, 900)),
    # The reviewer's page for the sample as an audited recording (a live call keeps none for the player and the
    # waveform), its review begun.
    Shot("qa-review", "/qa/calls/{call_id}/review", "qa", ready='#waveform[data-drawn="1"]', size=(1366, 900),
         prepare=begun_review),
    # The supervisor's result of a calibration of that recording by three reviewers.
    Shot("qa-calibration-result", "/qa/calibrations/{calibration_id}/result", "qa", ready='#result[data-complete="1"]',
         size=(1366, 1100), prepare=scored_calibration),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def open_shot(context: Any, api: Api, shot: Shot, call_id: str = "") -> Any:
    base_url, keys = api.base_url, api.keys
    page = context.new_page()
    page.set_viewport_size({"width": shot.size[0], "height": shot.size[1]})
    fields = {"call_id": call_id, **(shot.prepare(api, call_id) if shot.prepare else {})}
    url = base_url + shot.path.format(**fields)
    if shot.who == "agent":
        url += "#" + sign_in_fragment("agent_id", DEMO_AGENT, keys.agent)
    elif shot.who == "supervisor":
        url += "#" + sign_in_fragment("supervisor", SUPERVISOR, keys.supervisor)
    else:
        page.set_extra_http_headers({"Authorization": f"Bearer {keys.supervisor}"})
    page.goto(url)
    if shot.who != "qa":
        page.wait_for_selector("#conn[data-state=live]")
    return page


def take(page: Any, shot: Shot, out: Path) -> Path:
    if shot.click:
        page.wait_for_selector(shot.click, timeout=60_000)
        page.click(shot.click)
    page.wait_for_selector(shot.ready, timeout=60_000)
    page.wait_for_timeout(300)  # let a transition or a chart settle
    path = out / f"{shot.name}.png"
    page.screenshot(path=str(path))
    print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {path.stat().st_size // 1024} KB")
    return path


def wait_for_second_pass(base_url: str, call_id: str, key: str, timeout_s: float = 180.0) -> None:
    """The stored report is replaced by the second pass's a few seconds after the call (docs/protocol.md)."""
    request = urllib.request.Request(f"{base_url}/v1/audit/calls/{call_id}", headers={"Authorization": f"Bearer {key}"})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(request, timeout=30) as answer:
            if json.load(answer).get("transcript") == "second_pass":
                return
        time.sleep(1)
    print(f"the second pass of {call_id} was not stored in {timeout_s:.0f} s; the report shows the live text")


def shoot(shots: tuple[Shot, ...], out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    keys = Keys(agent=secrets.token_urlsafe(16), supervisor=secrets.token_urlsafe(16),
                reviewers={name: secrets.token_urlsafe(16) for name in REVIEWERS})
    data_dir = Path(tempfile.mkdtemp(prefix="callwatch-screenshots-"))
    settings = Settings(data_dir=data_dir, agent_tokens={DEMO_AGENT: keys.agent},
                        supervisor_tokens={SUPERVISOR: keys.supervisor, **keys.reviewers},
                        audit_import_roots=[SAMPLE_CALL.parent])  # where the QA shots audit the sample from
    server = DemoServer(settings, "127.0.0.1", free_port())
    print(f"starting callwatch on {server.base_url} …")
    if not server.start():
        raise SystemExit("the service did not start")
    out.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(locale="zh-CN", device_scale_factor=1)
            live = sorted((s for s in shots if s.during_call), key=lambda s: s.at_s)
            api = Api(server.base_url, keys)
            pages = {s.name: open_shot(context, api, s) for s in live}

            played: list[PlayedCall] = []
            call = threading.Thread(target=lambda: played.append(play_sample(server.ingest_url, StringIO())))
            started = time.monotonic()
            call.start()
            for shot in live:
                time.sleep(max(0.0, started + shot.at_s - time.monotonic()))
                taken.append(take(pages[shot.name], shot, out))
            call.join()
            if not played or played[0].ended is None:
                raise SystemExit("the demo call did not end")
            call_id = played[0].ended["call_id"]

            wait_for_second_pass(server.base_url, call_id, keys.supervisor)
            for shot in (s for s in shots if not s.during_call):
                taken.append(take(open_shot(context, api, shot, call_id), shot, out))
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)  # a fresh database each time: only the demo call is listed
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the PNGs (default {OUT.relative_to(REPO)})")
    parser.add_argument("--only", default="", help="comma-separated shot names: " + ", ".join(s.name for s in SHOTS))
    args = parser.parse_args(argv)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = wanted - {s.name for s in SHOTS}
    if unknown:
        parser.error(f"no such shot: {', '.join(sorted(unknown))}")
    if not Path(CHROMIUM).exists():
        parser.error(f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set CALLWATCH_CHROMIUM)")
    shoot(tuple(s for s in SHOTS if not wanted or s.name in wanted), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
