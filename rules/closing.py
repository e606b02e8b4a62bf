"""Section D: closing the call (seed 001: 谢谢对方 … 说声"再见"，对方挂后再挂; 断线应主动重拨)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Iterable

from pydantic import Field

from rules.base import Detection, Rule
from rules.findings import Evidence
from rules.opening import to_local
from rules.settings import PositiveSeconds, Strict
from rules.state import CallState, UtteranceRecord, event_evidence
from rules.timeline import CallEvent


def closing_applies(call: CallState) -> bool:
    """A dropped line or a transferred call has no closing of this agent's to judge."""
    if call.hangup is not None and call.hangup.by == "system":
        return False
    return call.last_transfer_at is None and bool(call.agent)


class ClosingOptions(Strict):
    last_utterances: Annotated[int, Field(ge=1)]  # the agent's closing: its last N utterances …
    window_s: PositiveSeconds  # … that start within this long before the agent's last word


def closing_utterances(call: CallState, opts: ClosingOptions) -> list[UtteranceRecord]:
    last = call.agent[-1]
    tail = call.agent[-opts.last_utterances :]
    return [a for a in tail if a.start >= last.end - opts.window_s]


class SummaryThanks(Rule[ClosingOptions]):
    rule_id = "closing.summary_thanks"
    options_model = ClosingOptions

    def on_finish(self, call: CallState, mem: None) -> Iterable[Detection]:
        if not closing_applies(call):
            return ()
        tail = closing_utterances(call, self.options)
        if any(self.ctx.thanks.search(a.norm) for a in tail):
            return ()
        return [Detection(t=tail[-1].start, evidence=[a.evidence() for a in tail], detail="结束语中没有感谢客户来电")]


class GoodbyeOptions(ClosingOptions):
    remind_after_s: PositiveSeconds  # the customer signalled the end this long ago and no 再见 yet


@dataclass
class GoodbyeMemory:
    customer_closed_at: float | None = None
    agent_said_goodbye_at: float | None = None
    reminded: bool = False


class Goodbye(Rule[GoodbyeOptions]):
    """Post: the agent's closing has no 再见. Live: a reminder once the customer is wrapping up."""

    rule_id = "closing.goodbye"
    options_model = GoodbyeOptions

    def new_memory(self) -> GoodbyeMemory:
        return GoodbyeMemory()

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: GoodbyeMemory) -> Iterable[Detection]:
        if utt.speaker == "agent":
            if self.ctx.goodbye.search(utt.norm):
                mem.agent_said_goodbye_at = utt.start
        elif self.ctx.customer_closing.search(utt.norm):
            mem.customer_closed_at = utt.end
        return ()

    def on_tick(self, call: CallState, mem: GoodbyeMemory) -> Iterable[Detection]:
        closed = mem.customer_closed_at
        if closed is None or mem.reminded or call.ended or call.is_speaking("agent") or self._goodbye_said(mem):
            return ()
        if call.now - closed < self.options.remind_after_s:
            return ()
        mem.reminded = True
        return [
            Detection(
                t=call.now,
                evidence=[call.customer[-1].evidence()] if call.customer else [],
                detail="客户准备结束通话，请说「再见」并等客户先挂机",
                provisional=True,
            )
        ]

    def still_holds(self, detection: Detection, call: CallState, mem: GoodbyeMemory) -> bool:
        # The reminder has done its work once the agent says goodbye (even words the recogniser had not yet
        # returned when it was raised).
        return not self._goodbye_said(mem)

    @staticmethod
    def _goodbye_said(mem: GoodbyeMemory) -> bool:
        closed, said = mem.customer_closed_at, mem.agent_said_goodbye_at
        return closed is not None and said is not None and said >= closed - 30

    def on_finish(self, call: CallState, mem: GoodbyeMemory) -> Iterable[Detection]:
        if not closing_applies(call):
            return ()
        tail = closing_utterances(call, self.options)
        if any(self.ctx.goodbye.search(a.norm) for a in tail):
            return ()
        return [Detection(t=tail[-1].start, evidence=[a.evidence() for a in tail], detail="通话结束时坐席没有说「再见」")]


class HangsUpFirstOptions(Strict):
    pass


class CallerHangsUpFirst(Rule[HangsUpFirstOptions]):
    rule_id = "closing.caller_hangs_up_first"
    options_model = HangsUpFirstOptions

    def on_event(self, event: CallEvent, call: CallState, mem: None) -> Iterable[Detection]:
        if event.type != "hangup" or event.by != "agent" or call.last_transfer_at is not None:
            return ()
        evidence = [event_evidence(event)] + ([call.customer[-1].evidence()] if call.customer else [])
        return [Detection(t=event.t, evidence=evidence, detail="坐席先挂断了电话，客户还在线")]


class RedialOptions(Strict):
    within_min: PositiveSeconds  # a call back this soon after the drop counts
    min_utterances: Annotated[int, Field(ge=0)]  # fewer utterances: nothing was under way
    judge_without_history: bool  # no related_calls in the timeline: flag anyway?


class RedialDropped(Rule[RedialOptions]):
    rule_id = "closing.redial_dropped"
    options_model = RedialOptions

    def on_finish(self, call: CallState, mem: None) -> Iterable[Detection]:
        hangup = call.hangup
        if hangup is None or hangup.by != "system" or len(call.utterances) < self.options.min_utterances:
            return ()
        if self._conversation_was_over(call):
            return ()
        related = call.related_calls
        if related is None and not self.options.judge_without_history:
            return ()
        tz = self.ctx.deployment.timezone
        dropped_at = to_local(call.header.started_at, tz) + timedelta(seconds=hangup.t)
        limit = dropped_at + timedelta(minutes=self.options.within_min)
        for other in related or []:
            if other.direction != "outbound":
                continue
            if other.number and call.header.caller_number and other.number != call.header.caller_number:
                continue
            if dropped_at - timedelta(seconds=5) <= to_local(other.started_at, tz) <= limit:
                return ()
        last = call.utterances[-1]
        return [
            Detection(
                t=hangup.t,
                evidence=[event_evidence(hangup), last.evidence(), Evidence(kind="call", t=hangup.t, text=f"{self.options.within_min:.0f} 分钟内没有回拨")],
                detail=f"通话中途异常断线，{self.options.within_min:.0f} 分钟内没有回拨客户",
            )
        ]

    def _conversation_was_over(self, call: CallState) -> bool:
        for u in call.utterances[-2:]:
            if self.ctx.goodbye.search(u.norm):
                return True
        return False

