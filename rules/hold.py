"""Section B, hold and transfer: apologise after a long hold, hold before transferring (seed 001)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from rules.base import Detection, Rule
from rules.settings import NonNegative, PhraseList, PositiveSeconds, Strict
from rules.state import CallState, UtteranceRecord, event_evidence, span_evidence
from rules.timeline import CallEvent


class HoldApologyOptions(Strict):
    max_hold_s: PositiveSeconds  # holds longer than this need an apology
    waiting_phrases: PhraseList  # besides the shared apology list: 久等/让您等 …


@dataclass
class HoldMemory:
    hold_start: float | None = None
    pending: tuple[float, float] | None = None  # a long hold the agent has not yet spoken after
    sorry_at: float | None = None  # start of the agent's latest utterance with an apology or a waiting phrase


class HoldApology(Rule[HoldApologyOptions]):
    rule_id = "hold.apology"
    options_model = HoldApologyOptions

    def compile(self) -> None:
        self._sorry = self.ctx.matcher(self.options.waiting_phrases + self.ctx.lexicon.apology, self.ctx.lexicon.apology_exclude)

    def new_memory(self) -> HoldMemory:
        return HoldMemory()

    def on_event(self, event: CallEvent, call: CallState, mem: HoldMemory) -> Iterable[Detection]:
        if event.type == "hold":
            mem.hold_start = event.t
        elif event.type == "resume" and mem.hold_start is not None:
            if event.t - mem.hold_start > self.options.max_hold_s:
                mem.pending = (mem.hold_start, event.t)
            mem.hold_start = None
        return ()

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: HoldMemory) -> Iterable[Detection]:
        if utt.speaker != "agent":
            return ()
        sorry = self._sorry.search(utt.norm) is not None
        if sorry:
            mem.sorry_at = utt.start
        if mem.pending is None or utt.start < mem.pending[1] - 0.5:
            return ()
        start, end = mem.pending
        mem.pending = None
        if sorry:
            return ()
        return [
            Detection(
                t=utt.start,
                evidence=[span_evidence(start, end, f"保持 {end - start:.0f} 秒"), utt.evidence()],
                detail=f"让客户等待 {end - start:.0f} 秒后，恢复通话的第一句没有致歉",
                values={"hold_s": round(end - start)},
            )
        ]

    def still_holds(self, detection: Detection, call: CallState, mem: HoldMemory) -> bool:
        # A late apology is still the one the prompt asks for.
        return mem.sorry_at is None or mem.sorry_at < detection.t


class TransferHoldOptions(Strict):
    recent_hold_s: NonNegative  # a hold that ended this shortly before the transfer still counts


class TransferHoldFirst(Rule[TransferHoldOptions]):
    rule_id = "transfer.hold_first"
    options_model = TransferHoldOptions

    def on_event(self, event: CallEvent, call: CallState, mem: None) -> Iterable[Detection]:
        if event.type != "transfer" or call.on_hold:
            return ()
        if call.holds and event.t - call.holds[-1][1] <= self.options.recent_hold_s:
            return ()
        return [Detection(t=event.t, evidence=[event_evidence(event)], detail="转接前没有先把客户置于保持状态")]
