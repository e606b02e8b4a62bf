"""Section A of the rulebook: answering and opening (seed 001, 接电话的礼仪)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Iterable
from zoneinfo import ZoneInfo

from pydantic import Field

from rules.base import Detection, Rule
from rules.findings import Evidence
from rules.settings import PhraseList, PositiveSeconds, Strict
from rules.state import CallState, UtteranceRecord, event_evidence
from rules.timeline import CallEvent


# --- answer.rings -------------------------------------------------------------------

class AnswerRingsOptions(Strict):
    max_rings: Annotated[int, Field(ge=1)]  # more rings than this is a breach


class AnswerRings(Rule[AnswerRingsOptions]):
    rule_id = "answer.rings"
    options_model = AnswerRingsOptions

    def on_event(self, event: CallEvent, call: CallState, mem: None) -> Iterable[Detection]:
        if event.type != "answered" or call.header.direction != "inbound":
            return ()
        rings = count_rings(call.ringing, event, self.ctx.deployment.ring_cadence_s)
        if rings is None or rings <= self.options.max_rings:
            return ()
        waited = event.t - call.ringing[0].t if call.ringing else None
        how = f"，等待 {waited:.1f} 秒" if waited is not None else ""
        return [
            Detection(
                t=event.t,
                evidence=[event_evidence(e) for e in call.ringing[-1:]] + [event_evidence(event)],
                detail=f"响铃 {rings} 声才接听{how}（上限 {self.options.max_rings} 声）",
                values={"rings": rings},
            )
        ]


def count_rings(ringing: list[CallEvent], answered: CallEvent, cadence_s: float) -> int | None:
    """Rings heard before answering: an explicit count, one event per ring, or time / cadence."""
    if answered.ring_count is not None:
        return answered.ring_count
    if not ringing:
        return None
    explicit = [e.ring_count for e in ringing if e.ring_count is not None]
    if explicit:
        return max(explicit)
    if len(ringing) > 1:
        return len(ringing)
    # One event marks when ringing began; a ring starts every cadence period from then.
    return int(math.floor(max(0.0, answered.t - ringing[0].t) / cadence_s + 1e-9)) + 1


# --- opening.bare_wei ---------------------------------------------------------------

class BareWeiOptions(Strict):
    wei_tokens: PhraseList  # how ASR writes 喂 (after traditional→simplified)



class BareWei(Rule[BareWeiOptions]):
    rule_id = "opening.bare_wei"
    options_model = BareWeiOptions

    def compile(self) -> None:
        self._wei = [self.ctx.normalize(t) for t in self.options.wei_tokens]

    def new_memory(self) -> dict[str, bool]:
        return {"judged": False}

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: dict[str, bool]) -> Iterable[Detection]:
        if utt.speaker != "agent" or mem["judged"]:
            return ()
        mem["judged"] = True
        if not any(utt.norm.startswith(w) for w in self._wei if w):
            return ()
        if self.ctx.greeting.search(utt.norm):
            return ()
        return [Detection(t=utt.start, evidence=[utt.evidence()], detail=f"坐席开场只说「{utt.text.strip()}」，没有问候语")]


# --- opening.greeting ---------------------------------------------------------------

class GreetingOptions(Strict):
    directions: list[str]
    window_s: PositiveSeconds  # agent speech this long after the first agent utterance counts as the opening
    require_company: bool
    require_department: bool
    require_staff_number: bool


@dataclass
class OpeningMemory:
    utterances: list[UtteranceRecord] = field(default_factory=list)
    closed: bool = False


class OpeningGreeting(Rule[GreetingOptions]):
    rule_id = "opening.greeting"
    options_model = GreetingOptions

    def compile(self) -> None:
        self._staff = re.compile(self.ctx.deployment.staff_number_pattern)
        dept = self.ctx.deployment.department
        self._dept = self.ctx.matcher([dept]) if dept else None

    def new_memory(self) -> OpeningMemory:
        return OpeningMemory()

    def _applies(self, call: CallState) -> bool:
        return call.header.direction in self.options.directions

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: OpeningMemory) -> Iterable[Detection]:
        if mem.closed or not self._applies(call):
            return ()
        if utt.speaker == "agent":
            if mem.utterances and utt.start > mem.utterances[0].start + self.options.window_s:
                return self._close(call, mem)
            mem.utterances.append(utt)
            if not self._missing(mem):
                mem.closed = True
            return ()
        # The customer answering the agent ends the opening.
        if mem.utterances and utt.start >= mem.utterances[0].end - 0.2:
            return self._close(call, mem)
        return ()

    def on_tick(self, call: CallState, mem: OpeningMemory) -> Iterable[Detection]:
        if mem.closed or not mem.utterances or call.is_speaking("agent"):
            return ()
        if call.now > mem.utterances[0].start + self.options.window_s:
            return self._close(call, mem)
        return ()

    def on_finish(self, call: CallState, mem: OpeningMemory) -> Iterable[Detection]:
        if mem.closed or not self._applies(call):
            return ()
        if not mem.utterances:
            return ()
        return self._close(call, mem)

    def _missing(self, mem: OpeningMemory) -> list[str]:
        text = "".join(u.norm for u in mem.utterances)
        missing = []
        if not self.ctx.greeting.search(text):
            missing.append("问候语（您好）")
        if self.options.require_company and not self.ctx.company.search(text):
            missing.append(f"公司名称（{self.ctx.deployment.company_name}）")
        if self.options.require_department and self._dept is not None and not self._dept.search(text):
            missing.append(f"部门（{self.ctx.deployment.department}）")
        if self.options.require_staff_number and not self._staff.search(text):
            missing.append("工号")
        return missing

    def _close(self, call: CallState, mem: OpeningMemory) -> list[Detection]:
        mem.closed = True
        missing = self._missing(mem)
        if not missing:
            return []
        first = mem.utterances[0]
        return [
            Detection(
                t=first.start,
                evidence=[u.evidence() for u in mem.utterances],
                detail="开场缺少：" + "、".join(missing),
                values={"missing": "、".join(missing)},
            )
        ]


# --- outbound.hours -----------------------------------------------------------------

class OutboundHoursOptions(Strict):
    pass


class OutboundHours(Rule[OutboundHoursOptions]):
    rule_id = "outbound.hours"
    options_model = OutboundHoursOptions

    def new_memory(self) -> dict[str, bool]:
        return {"judged": False}

    def _judge(self, call: CallState, mem: dict[str, bool]) -> list[Detection]:
        if mem["judged"]:
            return []
        mem["judged"] = True
        if call.header.direction != "outbound":
            return []
        local = to_local(call.header.started_at, self.ctx.deployment.timezone)
        hours = self.ctx.deployment.business_hours
        t = local.time()
        reason = None
        if local.isoweekday() not in hours.days:
            reason = "非工作日"
        elif not hours.window.contains(t):
            reason = f"不在 {hours.window.start}–{hours.window.end} 之内"
        else:
            for quiet in hours.quiet:
                if quiet.contains_open_end(t):
                    reason = f"在 {quiet.start}–{quiet.end} 午休时段"
                    break
        if reason is None:
            return []
        return [
            Detection(
                t=0.0,
                evidence=[Evidence(kind="call", t=0.0, text=f"外呼开始于 {local.strftime('%Y-%m-%d %H:%M')}")],
                detail=f"外呼时间 {local.strftime('%H:%M')} {reason}",
                values={"local_time": local.strftime("%H:%M")},
            )
        ]

    def on_event(self, event: CallEvent, call: CallState, mem: dict[str, bool]) -> Iterable[Detection]:
        return self._judge(call, mem)

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: dict[str, bool]) -> Iterable[Detection]:
        return self._judge(call, mem)

    def on_tick(self, call: CallState, mem: dict[str, bool]) -> Iterable[Detection]:
        return self._judge(call, mem)

    def on_finish(self, call: CallState, mem: dict[str, bool]) -> Iterable[Detection]:
        return self._judge(call, mem)


def to_local(started_at: datetime, timezone: str) -> datetime:
    """A naive start time is already local; an aware one is converted to the deployment's zone."""
    if started_at.tzinfo is None:
        return started_at
    return started_at.astimezone(ZoneInfo(timezone))


# --- outbound.self_intro ------------------------------------------------------------

class SelfIntroOptions(Strict):
    first_utterances: Annotated[int, Field(ge=1)]  # agent utterances that make up the opening
    window_s: PositiveSeconds
    identity: PhraseList  # "I am …" phrases, besides the company name
    purpose: PhraseList



class OutboundSelfIntro(Rule[SelfIntroOptions]):
    rule_id = "outbound.self_intro"
    options_model = SelfIntroOptions

    def compile(self) -> None:
        self._identity = self.ctx.matcher(self.options.identity)
        self._purpose = self.ctx.matcher(self.options.purpose)

    def new_memory(self) -> OpeningMemory:
        return OpeningMemory()

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: OpeningMemory) -> Iterable[Detection]:
        if call.header.direction != "outbound" or mem.closed or utt.speaker != "agent":
            return ()
        if mem.utterances and utt.start > mem.utterances[0].start + self.options.window_s:
            return self._close(mem)
        mem.utterances.append(utt)
        if len(mem.utterances) >= self.options.first_utterances:
            return self._close(mem)
        return ()

    def on_finish(self, call: CallState, mem: OpeningMemory) -> Iterable[Detection]:
        if call.header.direction != "outbound" or mem.closed or not mem.utterances:
            return ()
        return self._close(mem)

    def _close(self, mem: OpeningMemory) -> list[Detection]:
        mem.closed = True
        text = "".join(u.norm for u in mem.utterances)
        missing = []
        if not self.ctx.greeting.search(text):
            missing.append("问候语")
        if not (self.ctx.company.search(text) or self._identity.search(text)):
            missing.append("自我介绍（公司/姓名）")
        if not self._purpose.search(text):
            missing.append("去电目的")
        if not missing:
            return []
        return [
            Detection(
                t=mem.utterances[0].start,
                evidence=[u.evidence() for u in mem.utterances],
                detail="外呼开场缺少：" + "、".join(missing),
                values={"missing": "、".join(missing)},
            )
        ]
