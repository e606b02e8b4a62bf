"""The rules engine following a call: the pipeline's results in, prompts and the post-call report out.

The engine knows timelines (rules.timeline), not wire messages; this observer translates one into the other,
so the same engine judges a live call, an audited recording and a stored timeline alike.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pipelines.call_session import CallObserver, CallSession
from rules.engine import RuleBook, RulesEngine
from rules.findings import CallReport, Evidence, Finding, LiveMessage, Prompt, PromptCleared
from rules.timeline import CallEvent, CallHeader, EmotionSample, Utterance, VoiceSegment
from wire.ingest import FindingOut, PromptClearedResult, PromptResult, RecoveryStep, ReportResult

log = logging.getLogger("callwatch.rules")
_SPEAKER_LABEL = {"agent": "坐席", "customer": "客户"}


def describe_evidence(evidence: list[Evidence]) -> str:
    """One line a person reads: who said what when, or which event."""
    parts = []
    for item in evidence:
        if item.kind == "utterance" and item.text:
            parts.append(f"{_SPEAKER_LABEL.get(item.speaker or '', '')} {item.t:.1f}s：{item.text}")
        elif item.kind == "event" and item.event:
            parts.append(f"{item.event} @ {item.t:.1f}s")
        elif item.end is not None:
            parts.append(f"{item.t:.1f}–{item.end:.1f}s")
        else:
            parts.append(f"{item.t:.1f}s")
    return "；".join(parts)


def prompt_message(call_id: str, prompt: Prompt) -> PromptResult:
    recovery = (
        RecoveryStep(step=prompt.recovery.step, suggestion=prompt.recovery.suggestion)
        if prompt.recovery
        else None
    )
    return PromptResult(
        call_id=call_id, event_id=0, prompt_id=prompt.prompt_id, rule_id=prompt.rule_id,
        severity=prompt.severity, t=round(prompt.t, 3), evidence=describe_evidence(prompt.evidence),
        text=prompt.text, recovery=recovery,
    )


def cleared_message(call_id: str, cleared: PromptCleared) -> PromptClearedResult:
    return PromptClearedResult(call_id=call_id, event_id=0, prompt_id=cleared.prompt_id)


def finding_message(finding: Finding) -> FindingOut:
    return FindingOut(rule_id=finding.rule_id, severity=finding.severity, t=round(finding.t, 3),
                      evidence=describe_evidence(finding.evidence), prompt=finding.prompt)


class RulesObserver(CallObserver):
    def __init__(self, book: RuleBook, header: CallHeader, on_report: Any = None):
        self.engine = RulesEngine(book, header)
        self.report: CallReport | None = None
        # Called with (call_id, report) before the report message goes out, to store it.
        self._on_report = on_report

    async def on_result(self, result: Any, call: CallSession) -> None:
        item = self._timeline_item(result, call)
        if item is not None:
            await self._send(call, self.engine.feed(item))

    async def on_speech(self, speaker: str, start: float, end: float | None, call: CallSession) -> None:
        if speaker in _SPEAKER_LABEL:
            # Speech raises nothing, but may end a silence whose prompt is on the screen.
            await self._send(call, self.engine.feed(VoiceSegment(speaker=speaker, start=start, end=end)))

    async def on_tick(self, now: float, call: CallSession) -> None:
        await self._send(call, self.engine.advance(now))

    async def on_finish(self, call: CallSession) -> None:
        self.report = self.engine.finish()
        if self._on_report is not None:
            await self._on_report(call.call_id, self.report)
        await call.emit(ReportResult(
            call_id=call.call_id, event_id=0, score=self.report.score,
            findings=[finding_message(f) for f in self.report.findings],
        ))

    async def _send(self, call: CallSession, messages: list[LiveMessage]) -> None:
        for m in messages:
            await call.emit(prompt_message(call.call_id, m) if isinstance(m, Prompt) else cleared_message(call.call_id, m))

    @staticmethod
    def _timeline_item(result: Any, call: CallSession) -> Any:
        kind = getattr(result, "type", None)
        if kind in ("final", "partial") and result.speaker not in _SPEAKER_LABEL:
            return None  # a mono recording: the rules need to know who spoke
        if kind == "final":
            return Utterance(speaker=result.speaker, start=result.start, end=result.end, text=result.text,
                             level_db=result.level_db)
        if kind == "partial":
            return Utterance(speaker=result.speaker, start=result.start, end=max(result.start, call.now),
                             text=result.text, partial=True)
        if kind == "event":
            return CallEvent(type=result.event, t=result.t, by=result.by, target=result.target)
        if kind == "emotion":
            return EmotionSample(t=result.t, valence=result.valence, arousal=result.arousal, label=result.label)
        return None


def call_header(call_id: str, agent_id: str | None, direction: str, started_at: datetime | None,
                caller_number: str | None = None) -> CallHeader:
    # Without a start time from the phone system, the call started now, in this machine's time zone.
    return CallHeader(call_id=call_id, direction=direction,
                      started_at=started_at or datetime.now().astimezone(), agent_id=agent_id,
                      caller_number=caller_number)
