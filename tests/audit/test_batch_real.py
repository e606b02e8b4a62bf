"""A real batch on the real models: stereo calls in the formats recorders write, a mono recording, bad
files; transcripts, findings, scores, the report files, and a re-run that skips what is done."""

from __future__ import annotations

import asyncio
import csv
import json
import time
from pathlib import Path

import pytest

from models.text import character_error_rate
CALLS = ("call_01_read_vs_spontaneous", "call_02_podcast_pair_with_backchannel", "call_03_dialogue_and_commands")

STEREO = {  # report file stem → shared call its audio came from
    "call_01_read_vs_spontaneous": CALLS[0],
    "call_02_podcast": CALLS[1],
    "call_03_alaw": CALLS[2],
}


def _report(audited, stem: str) -> dict:
    return json.loads((audited["out"] / f"{stem}.json").read_text(encoding="utf-8"))


def _summary(audited) -> dict:
    return json.loads((audited["out"] / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("stem", sorted(STEREO))
def test_stereo_transcripts_by_speaker(audited, call_timeline, stem):
    """WAV PCM, MP3 and A-law: each side's transcript matches the reference (the live path's bounds)."""
    report = _report(audited, stem)
    ref = call_timeline(STEREO[stem])
    assert report["speaker_attribution"] == "channels" and report["speaker_note"] is None
    for role, bound in (("agent", 0.20), ("customer", 0.30)):
        hyp = "".join(u["text"] for u in report["utterances"] if u["speaker"] == role)
        truth = "".join(t["text"] for t in ref["turns"] if t["role"] == role)
        errors, length = character_error_rate(truth, hyp)
        assert errors / length <= bound, (stem, role, hyp)
    # Utterances in time order, each inside the recording.
    starts = [u["start"] for u in report["utterances"]]
    assert starts == sorted(starts) and report["utterances"][-1]["end"] <= report["duration_s"] + 0.5


def test_findings_and_score_from_the_rules(audited):
    """None of the test calls opens with 您好 + company or closes with thanks and 再见; call_01's metadata
    makes it an outbound call at 22:30 that the agent hung up."""
    for stem in STEREO:
        report = _report(audited, stem)
        rules = {f["rule_id"] for f in report["findings"]}
        opening = "outbound.self_intro" if report["direction"] == "outbound" else "opening.greeting"
        assert {opening, "closing.goodbye"} <= rules, (stem, rules)
        for f in report["findings"]:
            assert f["evidence"], f  # every finding carries its evidence
        assert report["score"] == pytest.approx(100 - sum(d["points"] for d in report["deductions"]))
        assert 0 <= report["score"] < 100
    call01 = _report(audited, "call_01_read_vs_spontaneous")
    rules01 = {f["rule_id"] for f in call01["findings"]}
    assert {"outbound.hours", "closing.caller_hangs_up_first"} <= rules01
    hangup = next(f for f in call01["findings"] if f["rule_id"] == "closing.caller_hangs_up_first")
    assert hangup["t"] == pytest.approx(26.0)
    assert call01["agent_id"] == "A1042" and call01["direction"] == "outbound"
    assert [e["event"] for e in call01["events"]] == ["answered", "hangup"]


def test_each_customer_utterance_is_on_the_emotion_curve(audited):
    """Each customer utterance gets an emotion sample; the report carries the curve and the worst mood."""
    report = _report(audited, "call_01_read_vs_spontaneous")
    customer = [u for u in report["utterances"] if u["speaker"] == "customer"]
    assert len(report["emotion_curve"]) == len(customer) > 0
    assert report["worst_mood"]["label"] in ("angry", "upset", "neutral", "satisfied")


def test_mono_is_transcribed_with_uncertain_speakers(audited, call_timeline):
    report = _report(audited, "A3003_20261125-143000_mono")
    assert report["speaker_attribution"] == "guessed" and "单声道" in report["speaker_note"]
    assert report["agent_id"] == "A3003" and report["started_at"].startswith("2026-11-25T14:30:00")
    assert all(u["speaker"] == "unknown" and u["speaker_uncertain"] for u in report["utterances"])
    assert {u["speaker_guess"] for u in report["utterances"]} == {"agent", "customer"}
    hyp = "".join(u["text"] for u in report["utterances"])
    ref = "".join(t["text"] for t in call_timeline(CALLS[0])["turns"])
    errors, length = character_error_rate(ref, hyp)
    assert errors / length <= 0.3, hyp
    assert "opening.greeting" in {f["rule_id"] for f in report["findings"]}
    html = (audited["out"] / "A3003_20261125-143000_mono.html").read_text(encoding="utf-8")
    assert 'id="speaker-note"' in html


def test_bad_files_fail_alone_with_a_reason(audited, audit_inputs):
    summary = _summary(audited)
    by_name = {c["file_name"]: c for c in summary["calls"]}
    for name, code in audit_inputs["bad_codes"].items():
        assert by_name[name]["state"] == "failed", by_name[name]
        assert by_name[name]["error_code"] == code, by_name[name]
        assert name in by_name[name]["error"]
    done = [c for c in summary["calls"] if c["state"] == "done"]
    assert len(done) == 4  # every good recording went on
    assert audited["summary"]["exit_code"] == 1  # some failed: scripts notice


def test_report_files_named_after_the_recordings(audited):
    out: Path = audited["out"]
    for stem in [*STEREO, "A3003_20261125-143000_mono"]:
        for ext in ("json", "csv", "html"):
            assert (out / f"{stem}.{ext}").is_file(), (stem, ext)
    html = (out / "call_01_read_vs_spontaneous.html").read_text(encoding="utf-8")
    assert "<svg" in html and "客户情绪曲线" in html and 'class="finding"' in html
    assert 'data-rule="closing.caller_hangs_up_first"' in html
    assert 'src="../' in html or "call_01_read_vs_spontaneous.wav" in html  # the player finds the recording
    assert (out / "index.html").is_file()
    with (out / "summary.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 9  # one row per file, failures included
    row = next(r for r in rows if r["file_name"] == "call_01_read_vs_spontaneous.wav")
    assert row["closing.caller_hangs_up_first"] == "1" and row["answer.rings"] == "0"
    assert float(row["score"]) == _report(audited, "call_01_read_vs_spontaneous")["score"]


def test_a_rerun_skips_what_is_done(runtime, audited, audit_inputs, tmp_path):
    from service.audit.cli import run_batch

    began = time.perf_counter()
    summary = asyncio.run(run_batch(runtime, [audit_inputs["recordings"]], out_dir=tmp_path, formats=["json"],
                                    show_progress=False))
    assert time.perf_counter() - began < 10  # nothing recognised again
    states = {c["file_name"]: c["state"] for c in _summary({"out": tmp_path})["calls"]}
    assert set(states.values()) == {"skipped"}, states
    again = json.loads((tmp_path / "call_01_read_vs_spontaneous.json").read_text(encoding="utf-8"))
    assert again == _report(audited, "call_01_read_vs_spontaneous")
    assert summary["exit_code"] == 0


def test_agent_on_the_right_swaps_the_speakers(runtime, shared_audio, tmp_path):
    from service.audit.cli import run_batch

    src = tmp_path / "in" / "right_agent.wav"
    src.parent.mkdir()
    src.write_bytes((shared_audio / "calls" / f"{CALLS[0]}.wav").read_bytes())
    asyncio.run(run_batch(runtime, [src], out_dir=tmp_path / "out", formats=["json"], agent_channel=1,
                          show_progress=False))
    report = json.loads((tmp_path / "out" / "right_agent.json").read_text(encoding="utf-8"))
    first = report["utterances"][0]
    assert first["speaker"] == "customer" and first["start"] < 1.5  # the left channel speaks first
    assert report["recording"]["agent_channel"] == 1


def test_too_long_and_too_large_fail_alone(runtime, shared_audio, tmp_path):
    from service.audit.running.rulesets import deployment_book
    from service.audit.running.runner import audit_recording
    from service.audit.web.models import AuditOptions, RecordingMeta

    path = shared_audio / "calls" / f"{CALLS[0]}.wav"
    book = deployment_book(runtime)
    long = asyncio.run(audit_recording(runtime, path, meta=RecordingMeta(), book=book,
                                       options=AuditOptions(max_seconds=10), force=True))
    assert long.state == "failed" and long.error_code == "too_long" and "录音过长" in long.error
    large = asyncio.run(audit_recording(runtime, path, meta=RecordingMeta(), book=book,
                                        options=AuditOptions(max_bytes=100_000), force=True))
    assert large.state == "failed" and large.error_code == "too_large" and "MB" in large.error


def test_a_recording_is_heard_by_the_second_pass_and_the_same_each_time(runtime, audited, shared_audio, tmp_path):
    from service.audit.cli import run_batch

    first = _report(audited, "call_01_read_vs_spontaneous")
    assert first["transcript"] == "second_pass"
    assert {u["text_pass"] for u in first["utterances"]} == {"second"}
    assert all(u["live_text"] is None for u in first["utterances"])  # nobody was shown a live pass
    # The same audio under another name is another call, audited from scratch: the same transcript.
    again = tmp_path / "in" / "call_01_again.wav"
    again.parent.mkdir()
    again.write_bytes((shared_audio / "calls" / f"{CALLS[0]}.wav").read_bytes())
    asyncio.run(run_batch(runtime, [again], out_dir=tmp_path / "out", formats=["json"], show_progress=False))
    second = json.loads((tmp_path / "out" / "call_01_again.json").read_text(encoding="utf-8"))
    assert second["call_id"] != first["call_id"]
    assert [(u["speaker"], u["start"], u["text"]) for u in second["utterances"]] == [
        (u["speaker"], u["start"], u["text"]) for u in first["utterances"]]
