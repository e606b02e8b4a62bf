"""/metrics on the real server after a real call: Prometheus text that parses, counters that moved by what
the call did, the gauges read from the runtime, and every metric documented in docs/operations.md."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

from clients.ingest_client import CallStream
from pipelines.audio import encode_pcm16

REPO = Path(__file__).resolve().parents[1]
CALL = REPO / "tests" / "web" / "data" / "wei_short.flac"  # the agent opens with a bare 喂: one prompt
OPERATIONS_DOC = REPO / "docs" / "operations.md"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def stream_call(url: str, call_id: str) -> list[dict]:
    audio, rate = sf.read(CALL, dtype="float32")
    assert rate == 16000 and audio.shape[1] == 2
    pcm = encode_pcm16(audio.reshape(-1))  # interleaved agent, customer
    frame = 320 * 2 * 2  # 20 ms of stereo 16-bit
    async with CallStream(url) as call:
        await call.start(call_id=call_id, agent_id="a-metrics", audio={"encoding": "pcm_s16le", "sample_rate": 16000})
        await call.event("answered", t=0.0)
        await call.send_json({"type": "dance"})  # an unknown message: an error by code, and the call goes on
        for i in range(0, len(pcm), frame):
            await call.send_audio(pcm[i : i + frame])
        # Hang up only once the prompt is out: after a hangup the rules raise no more live prompts.
        heard = []
        async for result in call.results():
            heard.append(result)
            if result["type"] == "prompt":
                break
        await call.event("hangup", by="customer")
        return heard + [r async for r in call.results()]


async def test_a_call_moves_the_counters_and_the_histograms(live_server, runtime):
    before = scrape(live_server.url)
    results = await stream_call(live_server.ingest_url, "metrics-call")
    after = scrape(live_server.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    finals = [r for r in results if r["type"] == "final"]
    prompts = [r for r in results if r["type"] == "prompt"]
    assert finals and prompts, [r["type"] for r in results]
    assert delta("callwatch_calls_started_total", connector="ingest") == 1
    assert delta("callwatch_calls_ended_total", status="completed", connector="ingest") == 1
    assert abs(delta("callwatch_audio_received_seconds_total", connector="ingest") - 6.0) < 0.05  # the recording is 6.0 s
    assert delta("callwatch_ingest_errors_total", code="unknown_type", connector="ingest") == 1
    assert delta("callwatch_final_latency_seconds_count", connector="ingest") == len(finals)
    assert delta("callwatch_final_latency_seconds_sum", connector="ingest") >= 0
    by_severity: dict[str, int] = {}
    for p in prompts:
        by_severity[p["severity"]] = by_severity.get(p["severity"], 0) + 1
    for severity, count in by_severity.items():
        assert delta("callwatch_prompts_sent_total", severity=severity) == count
    # The bare 喂 prompt is raised on hearing the agent's final (it comes right after it): its latency is
    # measured from that final's end, on the call's clock (here the whole 6 s had been sent by then).
    assert [p["rule_id"] for p in prompts] == ["opening.bare_wei"]
    kinds = [r["type"] for r in results]
    # Results and what they cause go through one queue, so what an observer raises comes after the final
    # it judged; another leg's partial, queued meanwhile, may come between them on a loaded machine.
    assert [k for k in kinds[: kinds.index("prompt")] if k != "partial"][-1] == "final"
    assert delta("callwatch_prompt_latency_seconds_count") == 1
    assert 0 < delta("callwatch_prompt_latency_seconds_sum") <= 6.0 - finals[0]["end"] + 0.05
    assert delta("callwatch_asr_jobs_total", kind="final") >= len(finals)
    assert delta("callwatch_asr_audio_seconds_total") > 0 and delta("callwatch_asr_busy_seconds_total") > 0

    assert value(after, "callwatch_live_calls") == 0
    assert value(after, "callwatch_live_calls_limit") == runtime.settings.max_live_calls
    assert value(after, "callwatch_asr_finals_waiting") == 0
    assert value(after, "callwatch_asr_real_time_factor") > 0
    for state in ("queued", "running", "done", "skipped", "failed"):
        assert ("callwatch_audit_jobs", (("state", state),)) in after
    assert value(after, "callwatch_info", asr_model=runtime.settings.asr_model, asr_device=runtime.settings.asr_device,
                 asr_compute_type=runtime.settings.asr_compute_type) == 1


def test_error_lines_of_the_service_are_counted_by_logger(live_server):
    before = value(scrape(live_server.url), "callwatch_log_errors_total", logger="callwatch.ops-test")
    logging.getLogger("callwatch.ops-test").error("an observer failed (test)")
    logging.getLogger("callwatch.ops-test").warning("a warning is not an error")
    after = value(scrape(live_server.url), "callwatch_log_errors_total", logger="callwatch.ops-test")
    assert after == before + 1


def test_every_metric_is_documented_and_every_documented_metric_is_served(live_server):
    served = {family.name for family in text_string_to_metric_families(httpx.get(f"{live_server.url}/metrics").text)}
    # prometheus_client adds a `_created` timestamp beside each counter and histogram; the parser lists it apart.
    served = {name for name in served if name.startswith("callwatch_") and not name.endswith("_created")}
    documented = set(re.findall(r"^\| `(callwatch_[a-z_]+)`", OPERATIONS_DOC.read_text(encoding="utf-8"), re.MULTILINE))
    # The parser names counter families without their `_total` suffix; the document names what is scraped.
    documented = {name.removesuffix("_total") for name in documented}
    assert served == documented, {"undocumented": served - documented, "not served": documented - served}
