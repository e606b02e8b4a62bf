"""Section C: complaints and an upset customer (seeds 000, 002, 003, 004).

"The customer turned negative" is decided once, by the engine (see ``negative.py``), so
every rule here agrees on when a complaint began.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Iterable

from pydantic import Field

from rules.base import Detection, Rule
from rules.findings import RecoveryFigure
from rules.settings import NonNegative, PhraseList, PositiveSeconds, Strict
from rules.state import CallState, NegativeOnset, UtteranceRecord


# --- complaint.empathy_first --------------------------------------------------------

class EmpathyOptions(Strict):
    within_s: PositiveSeconds  # after the customer stops talking
    lookback_s: NonNegative  # empathy just before the outburst still counts
    grace_s: NonNegative  # time to answer once a long rant ends, if the agent has not spoken yet


@dataclass
class EmpathyMemory:
    pending: NegativeOnset | None = None
    waiting_for_utterance: bool = False
    last_empathy_t: float | None = None


class EmpathyFirst(Rule[EmpathyOptions]):
    rule_id = "complaint.empathy_first"
    options_model = EmpathyOptions

    def new_memory(self) -> EmpathyMemory:
        return EmpathyMemory()

    def on_negative(self, onset: NegativeOnset, call: CallState, mem: EmpathyMemory) -> Iterable[Detection]:
        if mem.pending is not None:
            return ()
        if mem.last_empathy_t is not None and mem.last_empathy_t >= onset.t - self.options.lookback_s:
            return ()
        mem.pending = onset
        return ()

    def _deadline(self, call: CallState, onset: NegativeOnset) -> float:
        deadline = onset.floor_at + self.options.within_s
        agent_spoke = any(a.start >= onset.floor_at for a in call.agent[-5:])
        if not agent_spoke:
            cust_end = call.last_speech_end["customer"]
            if call.is_speaking("customer"):
                return max(deadline, call.now + self.options.grace_s)
            if cust_end is not None and cust_end > onset.floor_at:
                deadline = max(deadline, cust_end + self.options.grace_s)
        return deadline

    def _fire(self, call: CallState, mem: EmpathyMemory, deadline: float) -> list[Detection]:
        onset = mem.pending
        assert onset is not None
        mem.pending = None
        mem.waiting_for_utterance = False
        said = [a.evidence() for a in call.agent if onset.t <= a.start <= deadline][:3]
        return [
            Detection(
                t=onset.t,
                end=deadline,
                evidence=[onset.evidence, *said],
                detail=f"客户情绪转为负面后 {self.options.within_s:.0f} 秒内坐席没有表达理解或歉意",
            )
        ]

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: EmpathyMemory) -> Iterable[Detection]:
        if utt.speaker != "agent":
            return ()
        empathic = self.ctx.empathy.search(utt.norm) is not None
        if empathic:
            mem.last_empathy_t = utt.start
        if mem.pending is None:
            return ()
        deadline = self._deadline(call, mem.pending)
        if empathic and utt.start <= deadline:
            mem.pending = None
            mem.waiting_for_utterance = False
            return ()
        if mem.waiting_for_utterance or utt.start > deadline:
            return self._fire(call, mem, deadline)
        return ()

    def on_finish(self, call: CallState, mem: EmpathyMemory) -> Iterable[Detection]:
        # The call ended before the deadline; the agent had the floor and said no word of empathy.
        if mem.pending is None or not any(a.start >= mem.pending.floor_at for a in call.agent):
            return ()
        return self._fire(call, mem, self._deadline(call, mem.pending))

    def on_tick(self, call: CallState, mem: EmpathyMemory) -> Iterable[Detection]:
        if mem.pending is None or mem.waiting_for_utterance:
            return ()
        deadline = self._deadline(call, mem.pending)
        if call.now <= deadline:
            return ()
        since = call.speaking_since["agent"]
        if since is not None and since <= deadline:
            # The agent started in time; judge the words when the utterance is final.
            mem.waiting_for_utterance = True
            return ()
        return self._fire(call, mem, deadline)

    def still_holds(self, detection: Detection, call: CallState, mem: EmpathyMemory) -> bool:
        # Late empathy or an apology is the first recovery step taken: the prompt has done its work.
        return mem.last_empathy_t is None or mem.last_empathy_t < detection.t


# --- complaint.apology_wording ------------------------------------------------------

class ApologyWordingOptions(Strict):
    on_behalf: PhraseList  # 我代表公司 …
    but_words: PhraseList  # 但是/可是 …
    but_exclude: PhraseList
    same_utterance_chars: Annotated[int, Field(ge=1)]  # 但是 this close after the apology
    next_utterance_s: NonNegative  # the next agent utterance, if it starts this soon …
    next_utterance_chars: Annotated[int, Field(ge=1)]  # … and opens with 但是 within these characters


@dataclass
class ApologyMemory:
    last_apology: UtteranceRecord | None = None


class ApologyWording(Rule[ApologyWordingOptions]):
    rule_id = "complaint.apology_wording"
    options_model = ApologyWordingOptions

    def compile(self) -> None:
        self._behalf = self.ctx.matcher(self.options.on_behalf)
        self._but = self.ctx.matcher(self.options.but_words, self.options.but_exclude)

    def new_memory(self) -> ApologyMemory:
        return ApologyMemory()

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: ApologyMemory) -> Iterable[Detection]:
        if utt.speaker != "agent":
            return ()
        previous, mem.last_apology = mem.last_apology, None
        apology = self.ctx.apology.search(utt.norm)
        if apology is not None:
            mem.last_apology = utt
            behalf = self._behalf.search(utt.norm)
            if behalf is not None:
                return [self._detect(utt, [utt], f"道歉时说「{behalf.phrase}」，应以个人身份道歉")]
            tail = utt.norm[apology.end : apology.end + self.options.same_utterance_chars]
            but = self._but.search(tail)
            if but is not None:
                return [self._detect(utt, [utt], f"道歉后紧接着说「{but.phrase}」")]
            return ()
        if previous is not None and utt.start - previous.end <= self.options.next_utterance_s:
            but = self._but.search(utt.norm[: self.options.next_utterance_chars])
            if but is not None:
                return [self._detect(previous, [previous, utt], f"道歉后下一句以「{but.phrase}」开头")]
        return ()

    @staticmethod
    def _detect(at: UtteranceRecord, utts: list[UtteranceRecord], detail: str) -> Detection:
        return Detection(t=at.start, evidence=[u.evidence() for u in utts], detail=detail)


# --- complaint.no_argue / complaint.own_it ------------------------------------------

class PhraseRuleOptions(Strict):
    phrases: PhraseList
    exclude: PhraseList


class _AgentPhraseRule(Rule[PhraseRuleOptions]):
    options_model = PhraseRuleOptions
    detail_template = ""

    def compile(self) -> None:
        self._phrases = self.ctx.matcher(self.options.phrases, self.options.exclude)

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: None) -> Iterable[Detection]:
        if utt.speaker != "agent":
            return ()
        hit = self._phrases.search(utt.norm)
        if hit is None:
            return ()
        return [Detection(t=utt.start, evidence=[utt.evidence()], detail=self.detail_template.format(phrase=hit.phrase))]


class NoArgue(_AgentPhraseRule):
    rule_id = "complaint.no_argue"
    detail_template = "坐席与客户争辩：「{phrase}」"


class OwnIt(_AgentPhraseRule):
    rule_id = "complaint.own_it"
    detail_template = "坐席推诿责任：「{phrase}」"


# --- complaint.resolution_path / complaint.follow_up --------------------------------

class AfterComplaintOptions(Strict):
    phrases: PhraseList
    use_staff_number_pattern: bool


class _AfterComplaintRule(Rule[AfterComplaintOptions]):
    """Post-call: after the customer turned negative, did the agent ever say X?"""

    options_model = AfterComplaintOptions
    detail = ""

    def compile(self) -> None:
        self._phrases = self.ctx.matcher(self.options.phrases)
        self._staff = re.compile(self.ctx.deployment.staff_number_pattern) if self.options.use_staff_number_pattern else None

    def _said(self, a: UtteranceRecord) -> bool:
        return self._phrases.search(a.norm) is not None or (self._staff is not None and self._staff.search(a.norm) is not None)

    def on_finish(self, call: CallState, mem: None) -> Iterable[Detection]:
        if not call.negative_onsets or not call.agent:
            return ()
        onset = call.negative_onsets[0]
        if any(self._said(a) for a in call.agent if a.end >= onset.t):
            return ()
        return [self._detection(call, onset)]

    def _detection(self, call: CallState, onset: NegativeOnset) -> Detection:
        return Detection(t=onset.t, evidence=[onset.evidence], detail=self.detail)


class ResolutionPath(_AfterComplaintRule):
    rule_id = "complaint.resolution_path"
    detail = "客户投诉后，坐席始终没有说明将如何处理、何时答复"


class FollowUp(_AfterComplaintRule):
    rule_id = "complaint.follow_up"
    detail = "投诉电话结束前没有留下工号、姓名或回访方式"

    def _detection(self, call: CallState, onset: NegativeOnset) -> Detection:
        last = call.agent[-1]
        return Detection(t=last.start, evidence=[onset.evidence, last.evidence()], detail=self.detail)


# --- complaint.recovered ------------------------------------------------------------

class RecoveredOptions(Strict):
    min_gain: Annotated[float, Field(gt=0.0, le=2.0)]  # end valence at least this far above the lowest
    end_window_s: PositiveSeconds  # the customer's emotion at the end: samples in this last stretch
    text_last_utterances: Annotated[int, Field(ge=1)]  # without emotion: the customer's last N utterances


class Recovered(Rule[RecoveredOptions]):
    """A figure more than a breach: reported as an ``info`` finding when the customer left upset."""

    rule_id = "complaint.recovered"
    options_model = RecoveredOptions

    def on_finish(self, call: CallState, mem: None) -> Iterable[Detection]:
        fig = self.figure(call)
        if not fig.complaint or fig.recovered is not False:
            return ()
        last = call.customer[-1] if call.customer else None
        evidence = [call.negative_onsets[0].evidence] + ([last.evidence()] if last else [])
        if fig.source == "emotion":
            detail = f"客户情绪最低 {fig.lowest_valence:+.2f}，结束时 {fig.end_valence:+.2f}，没有恢复"
        else:
            detail = "通话结束时客户仍在抱怨，情绪没有恢复"
        return [Detection(t=call.negative_onsets[0].t, evidence=evidence, detail=detail)]

    def figure(self, call: CallState) -> RecoveryFigure:
        if not call.negative_onsets:
            return RecoveryFigure(complaint=False)
        samples = [s for s in call.emotion if s.speaker == "customer"]
        threshold = self.ctx.negative.valence_below
        if samples:
            lowest = min(samples, key=lambda s: s.valence)
            last_t = samples[-1].t
            # The end is what came after the worst moment; with nothing after it, the worst is the end.
            tail = [s.valence for s in samples if s.t >= last_t - self.options.end_window_s and s.t > lowest.t]
            end = sum(tail) / len(tail) if tail else lowest.valence
            gain = end - lowest.valence
            return RecoveryFigure(
                complaint=True,
                lowest_valence=round(lowest.valence, 3),
                lowest_t=lowest.t,
                end_valence=round(end, 3),
                gain=round(gain, 3),
                recovered=gain >= self.options.min_gain and end > threshold,
                source="emotion",
            )
        tail_utts = call.customer[-self.options.text_last_utterances :]
        still_angry = any(self.ctx.complaint.search(u.norm) or self.ctx.complaint_weak.search(u.norm) for u in tail_utts)
        return RecoveryFigure(complaint=True, recovered=not still_angry, source="text")
