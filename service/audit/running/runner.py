"""Audit one recording: check it, run it through the live pipeline, judge it, store it.

The transcript and the emotion come from the same pipeline and observers as a live call. The report is
then computed by replaying the stored timeline through the rules engine (`rules.engine.audit_timeline`),
exactly as a re-audit does, so re-auditing with unchanged rules reproduces the stored report and a
re-audit's differences come from the rules alone.

The stored call names the job that audited it (and the worker), so a job retried after its worker died
between storing the call and marking the job finds its own call and ends `done`, not `skipped`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pipelines.call_session import CallObserver, CallSession
from pipelines.recording_run import run_recording
from rules.engine import RuleBook
from rules.timeline import CallTimeline
from service.audit.intake.ids import file_sha256, recording_call_id
from service.audit.intake.probe import AuditFileError, Probe, probe_recording
from service.audit.running.timeline import build_timeline
from service.audit.web.models import AuditOptions, RecordingMeta
from service.judging import JudgingOverBudget, judge_off_loop
from service.persistence.call_list import CallList
from wire.ingest import CallEventMessage

log = logging.getLogger("callwatch.audit")
ProgressFn = Callable[[float], None]
DEFAULT_AGENT = "unknown"


@dataclass
class AuditResult:
    file_name: str
    state: str  # done | skipped | failed
    call_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    audio_seconds: float | None = None
    wall_seconds: float = 0.0
    source: Path | None = None
    report: dict[str, Any] | None = field(default=None, repr=False)


class _Progress(CallObserver):
    """Progress of one recording: how far its transcript has got (the recogniser is the slow part, the
    audio feed races ahead of it)."""

    def __init__(self, duration: float, report: ProgressFn | None):
        self.duration = max(duration, 1e-3)
        self.report = report
        self.done_to = 0.0

    async def on_result(self, result: Any, call: CallSession) -> None:
        if getattr(result, "type", None) == "final" and self.report is not None:
            self.done_to = max(self.done_to, result.end)
            self.report(min(0.99, self.done_to / self.duration))


def _observers(runtime: Any, call_id: str, meta: RecordingMeta, direction: str, started: datetime,
               book: RuleBook) -> list[CallObserver]:
    return runtime.observers_for(call_id, meta.agent_id or DEFAULT_AGENT, direction, started,
                                 caller_number=meta.caller_number, rule_book=book, store_report=False)


def _events(meta: RecordingMeta) -> list[CallEventMessage]:
    # Recorders start recording when the call is answered; without metadata, that is what we assume.
    if meta.events is None:
        return [CallEventMessage(type="event", event="answered", t=0.0)]
    return [CallEventMessage(type="event", event=e.event, t=e.t, by=e.by, target=e.target) for e in meta.events]


def _stored_by(call_list: CallList, call_id: str) -> tuple[str | None, float | None]:
    """The job that stored this call, and its duration."""
    listed = call_list.listed(call_id)
    if listed is None or not listed.audit:
        return None, None
    return listed.audit.get("job_id"), listed.duration


def _file_time(path: Path) -> datetime:
    # Recorders write the file when the call ends: its time is the best start time we have without metadata.
    return datetime.fromtimestamp(path.stat().st_mtime).replace(microsecond=0)


async def audit_recording(
    runtime: Any,
    path: Path,
    *,
    meta: RecordingMeta,
    options: AuditOptions,
    book: RuleBook,
    file_name: str | None = None,
    on_progress: ProgressFn | None = None,
    force: bool = False,
    job_id: str | None = None,
    worker: str | None = None,
) -> AuditResult:
    """Audit `path`; never raises for a bad recording (the result says why it failed). `job_id` and
    `worker` are stored with the call (how it was audited)."""
    name = file_name or path.name
    begun = time.perf_counter()
    call_list = CallList(runtime.store.db)
    try:
        sha = await asyncio.to_thread(file_sha256, path) if path.is_file() else ""
        if not sha:
            raise AuditFileError("not_found", f"{name}: 文件不存在 (no such file)")
        call_id = recording_call_id(sha, name)
        if not force and await asyncio.to_thread(call_list.is_listed, call_id):
            by_job, seconds = await asyncio.to_thread(_stored_by, call_list, call_id)
            if job_id is not None and by_job == job_id:  # this job's earlier attempt stored it, then died
                return AuditResult(name, "done", call_id=call_id, audio_seconds=seconds,
                                   wall_seconds=time.perf_counter() - begun)
            return AuditResult(name, "skipped", call_id=call_id, wall_seconds=time.perf_counter() - begun)
        probe: Probe = await asyncio.to_thread(probe_recording, path, options)
        _check_event_times(meta, probe.duration, name)
        await asyncio.to_thread(call_list.purge, call_id)
        direction = meta.direction or "inbound"
        started = meta.started_at or _file_time(path)
        progress = _Progress(probe.duration, on_progress)
        observers = _observers(runtime, call_id, meta, direction, started, book) + [progress]
        outcome = await run_recording(runtime, path, call_id, events=_events(meta), agent_channel=options.agent_channel,
                                      observers=observers, max_seconds=options.max_seconds,
                                      beam_size=options.beam_size)
        timeline, stored = _timeline(outcome, call_id, meta, direction, started)
        # A recording is heard by the second pass alone (pipelines/recording_run.py).
        try:
            judged = await judge_off_loop(timeline, book, runtime.settings.judge_budget_s)
        except JudgingOverBudget as err:
            raise AuditFileError("judging_over_budget", f"{name}: {err}") from None
        report = judged.model_copy(update={"transcript": "second_pass"}).model_dump(mode="json")
        audit_info = {
            "file_name": name, "sha256": sha, "size_bytes": path.stat().st_size, "codec": probe.codec,
            "container": probe.container, "channels": probe.channels, "sample_rate": probe.sample_rate,
            "agent_channel": options.agent_channel if probe.channels == 2 else None,
            "rules": options.rules_name, "beam_size": options.beam_size or runtime.second_pass.options.decode.beam_size,
            "asr_model": runtime.settings.asr_model,
            "audited_at": datetime.now(timezone.utc).isoformat(),
            "events_source": "metadata" if meta.events is not None else "assumed",
            "meta": meta.model_dump(mode="json", exclude_none=True),
            "job_id": job_id,
            "worker": worker,
            "tenant": options.tenant,  # the queuing key's: the call (and its list row) belong to that tenant
        }
        await asyncio.to_thread(
            call_list.store_audited, call_id=call_id, agent_id=meta.agent_id or DEFAULT_AGENT, direction=direction,
            caller_number=meta.caller_number, started_at=started.isoformat(),
            audio_format=outcome.audio_format.model_dump(mode="json"), duration=round(outcome.duration, 3),
            report=report, file_name=name, source_path=str(path.resolve()),
            speaker_attribution="guessed" if stored["mono"] else "channels", audit=audit_info, **stored["rows"],
        )
        return AuditResult(name, "done", call_id=call_id, audio_seconds=outcome.duration,
                           wall_seconds=time.perf_counter() - begun, report=report)
    except AuditFileError as err:
        return AuditResult(name, "failed", error_code=err.code, error=err.message, wall_seconds=time.perf_counter() - begun)
    except Exception as err:  # one bad file must not stop a batch: report it and go on
        log.exception("audit of %s failed", name)
        return AuditResult(name, "failed", error_code="internal", error=f"{name}: 审核失败 ({type(err).__name__}: {err})",
                           wall_seconds=time.perf_counter() - begun)


# Metadata times a few seconds past the audio are rounding (a platform's hangup time against the last
# frame written); beyond that they describe another call.
EVENT_TIME_SLACK_S = 5.0


def _check_event_times(meta: RecordingMeta, duration: float, name: str) -> None:
    for event in meta.events or []:
        if event.t > duration + EVENT_TIME_SLACK_S:
            raise AuditFileError("bad_metadata", f"{name}: {event.event} at {event.t:g} s is past the end of the "
                                                 f"recording ({duration:.1f} s)")


def _timeline(outcome: Any, call_id: str, meta: RecordingMeta, direction: str,
              started: datetime) -> tuple[CallTimeline, dict[str, Any]]:
    """The timeline to judge and the rows to store, from everything the pipeline said."""
    emotion = {r.utterance_id: r.model_dump(mode="json", exclude={"type", "call_id", "event_id", "utterance_id"})
               for r in outcome.results if r.type == "emotion"}
    utts = [
        {"utterance_id": f.utterance_id, "speaker": f.speaker, "start": f.start, "end": f.end, "text": f.text,
         "level_db": f.level_db, "emotion": emotion.get(f.utterance_id)}
        for f in outcome.finals
    ]
    events = [{"event": r.event, "t": r.t, "by": r.by, "target": r.target} for r in outcome.results if r.type == "event"]
    prompts = [
        {"prompt_id": r.prompt_id, "rule_id": r.rule_id, "severity": r.severity, "t": r.t, "text": r.text,
         "evidence": r.evidence}
        for r in outcome.results if r.type == "prompt"
    ]
    first: dict[str, dict[str, Any]] = {}
    for p in prompts:
        first.setdefault(p["prompt_id"], p)
    prompts = list(first.values())
    timeline, mono = build_timeline(call_id=call_id, direction=direction, started_at=started, agent_id=meta.agent_id,
                                    caller_number=meta.caller_number, events=events, utterances=utts)
    return timeline, {"mono": mono, "rows": {"events": events, "utts": utts, "prompts": prompts}}
