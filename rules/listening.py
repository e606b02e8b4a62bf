"""Section B, listening: silence while the customer talks, dead air, interruptions (seeds 001, 002)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from rules.base import Detection, Rule
from rules.settings import NonNegative, PositiveSeconds, Strict
from rules.state import CallState, UtteranceRecord, span_evidence
from rules.timeline import CallEvent


# --- listen.no_silence --------------------------------------------------------------

class NoSilenceOptions(Strict):
    max_customer_talk_s: PositiveSeconds  # customer talk with no agent sound longer than this is a breach
    max_pause_s: NonNegative  # customer pauses up to this long still count as one stretch


@dataclass
class NoSilenceMemory:
    run_start: float | None = None
    last_customer_end: float | None = None
    run_utterances: list[UtteranceRecord] = field(default_factory=list)
    fired_for: float | None = None


class ListenNoSilence(Rule[NoSilenceOptions]):
    """Fires when the customer has talked on and on and the agent made no sound at all.

    Any agent speech, a backchannel included, restarts the count: 嗯/好的 is exactly the
    acknowledgement the seed asks for.
    """

    rule_id = "listen.no_silence"
    options_model = NoSilenceOptions

    def new_memory(self) -> NoSilenceMemory:
        return NoSilenceMemory()

    def _run_start(self, call: CallState, mem: NoSilenceMemory) -> float | None:
        speaking = call.speaking_since["customer"]
        if speaking is not None and (
            mem.last_customer_end is None or speaking - mem.last_customer_end > self.options.max_pause_s
        ):
            return speaking
        return mem.run_start

    def _check(self, call: CallState, mem: NoSilenceMemory) -> list[Detection]:
        if call.is_speaking("agent"):
            return []
        run_start = self._run_start(call, mem)
        if run_start is None:
            return []
        agent_end = call.last_speech_end["agent"]
        start = max(run_start, agent_end) if agent_end is not None else run_start
        active_until = call.now if call.is_speaking("customer") else (mem.last_customer_end or start)
        if active_until - start <= self.options.max_customer_talk_s or mem.fired_for == start:
            return []
        mem.fired_for = start
        evidence = [u.evidence() for u in mem.run_utterances if u.end > start][-3:]
        if not evidence:
            evidence = [span_evidence(start, active_until, "客户持续讲话")]
        return [
            Detection(
                t=start,
                end=active_until,
                evidence=evidence,
                detail=f"客户连续讲了 {active_until - start:.0f} 秒以上，坐席没有任何回应",
            )
        ]

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: NoSilenceMemory) -> Iterable[Detection]:
        if utt.speaker != "customer":
            return ()
        if mem.last_customer_end is None or utt.start - mem.last_customer_end > self.options.max_pause_s or mem.run_start is None:
            mem.run_start = utt.start
            mem.run_utterances = []
        mem.run_utterances.append(utt)
        mem.last_customer_end = utt.end
        return self._check(call, mem)

    def on_tick(self, call: CallState, mem: NoSilenceMemory) -> Iterable[Detection]:
        if not call.is_speaking("customer"):
            return ()
        return self._check(call, mem)

    def still_holds(self, detection: Detection, call: CallState, mem: NoSilenceMemory) -> bool:
        # The prompt asks for a sign of listening: any sound from the agent since the stretch began ends it.
        last = call.last_speech_end["agent"]
        return not call.is_speaking("agent") and (last is None or last <= detection.t)


# --- listen.dead_air ----------------------------------------------------------------

class DeadAirOptions(Strict):
    max_silence_s: PositiveSeconds


@dataclass
class DeadAirMemory:
    fired_for: float | None = None
    last_end: float | None = None
    open: Detection | None = None


class ListenDeadAir(Rule[DeadAirOptions]):
    rule_id = "listen.dead_air"
    options_model = DeadAirOptions

    def new_memory(self) -> DeadAirMemory:
        return DeadAirMemory()

    @staticmethod
    def silence_start(call: CallState) -> float | None:
        """Since when nobody has spoken, counting only time the line is live (answered, not on hold)."""
        # Without an answered event the conversation starts with the first word.
        live_from = call.answered_at if call.answered_at is not None else (call.utterances[0].start if call.utterances else None)
        if live_from is None or call.on_hold:
            return None
        marks = [live_from]
        marks += [e for e in call.last_speech_end.values() if e is not None]
        if call.holds:
            marks.append(call.holds[-1][1])
        if call.last_transfer_at is not None:
            marks.append(call.last_transfer_at)
        return max(marks)

    def _fire(self, start: float, end: float, mem: DeadAirMemory) -> list[Detection]:
        if mem.fired_for == start or end - start <= self.options.max_silence_s:
            return []
        mem.fired_for = start
        det = Detection(
            t=round(start, 2),
            end=round(end, 2),
            evidence=[span_evidence(start, end, "双方都没有说话")],
            detail=f"冷场 {end - start:.0f} 秒以上",
            values={"seconds": round(end - start)},
        )
        mem.open = det
        return [det]

    def _close_open(self, end: float, mem: DeadAirMemory) -> None:
        det = mem.open
        if det is None:
            return
        mem.open = None
        det.end = round(end, 2)
        det.evidence = [span_evidence(det.t, end, "双方都没有说话")]
        det.detail = f"冷场 {end - det.t:.1f} 秒"
        det.values["seconds"] = round(end - det.t)

    def on_tick(self, call: CallState, mem: DeadAirMemory) -> Iterable[Detection]:
        if call.anyone_speaking() or call.ended:
            return ()
        start = self.silence_start(call)
        if start is None:
            return ()
        return self._fire(start, call.now, mem)

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: DeadAirMemory) -> Iterable[Detection]:
        prior_end = mem.last_end
        mem.last_end = utt.end if prior_end is None else max(prior_end, utt.end)
        if mem.open is not None and utt.start >= mem.open.t:
            self._close_open(utt.start, mem)
            return ()
        if call.answered_at is None and prior_end is None:
            return ()
        # Without clock ticks a gap is still seen when the next utterance arrives.
        marks = [m for m in (call.answered_at, prior_end) if m is not None]
        if call.holds:
            marks.append(call.holds[-1][1])
        if call.last_transfer_at is not None:
            marks.append(call.last_transfer_at)
        # Someone who started talking before this utterance ended the silence earlier.
        gap_end = min([utt.start] + [s for s in call.speaking_since.values() if s is not None])
        return self._fire(max(marks), gap_end, mem)

    def on_event(self, event: CallEvent, call: CallState, mem: DeadAirMemory) -> Iterable[Detection]:
        if event.type in ("hold", "hangup", "transfer"):
            if mem.open is not None:
                self._close_open(event.t, mem)
        return ()

    def still_holds(self, detection: Detection, call: CallState, mem: DeadAirMemory) -> bool:
        # Anything that ends the silence (a sound from either side, a hold, a transfer) moves its start on; a
        # new silence can only follow one that ended, so the latest one fired is the one on the screen.
        return not call.anyone_speaking() and self.silence_start(call) == mem.fired_for


# --- listen.no_interrupt ------------------------------------------------------------

class NoInterruptOptions(Strict):
    min_overlap_s: PositiveSeconds  # overlap longer than this is an interruption
    min_customer_lead_s: NonNegative  # both starting at once is a collision, not an interruption


class ListenNoInterrupt(Rule[NoInterruptOptions]):
    rule_id = "listen.no_interrupt"
    options_model = NoInterruptOptions

    def new_memory(self) -> set[int]:
        return set()

    def _overlap(self, agent: UtteranceRecord, c_start: float, c_end: float) -> float:
        if not (c_start < agent.start - self.options.min_customer_lead_s and c_end > agent.start):
            return 0.0
        return min(agent.end, c_end) - agent.start

    def _judge(self, agent: UtteranceRecord, call: CallState, judged: set[int]) -> list[Detection]:
        if agent.index in judged or self.ctx.is_backchannel(agent.norm):
            return []
        for c in reversed(call.customer):
            if c.end < agent.start - 60:
                break
            if self.ctx.is_backchannel(c.norm):
                continue
            overlap = self._overlap(agent, c.start, c.end)
            if overlap > self.options.min_overlap_s:
                judged.add(agent.index)
                return [self._detection(agent, overlap, c)]
        since = call.speaking_since["customer"]
        if since is not None:
            overlap = self._overlap(agent, since, call.now)
            if overlap > self.options.min_overlap_s:
                judged.add(agent.index)
                return [self._detection(agent, overlap, None)]
        return []

    def _detection(self, agent: UtteranceRecord, overlap: float, customer: UtteranceRecord | None) -> Detection:
        evidence = [agent.evidence()] + ([customer.evidence()] if customer else [])
        return Detection(
            t=agent.start,
            end=agent.start + overlap,
            evidence=evidence,
            detail=f"客户还在说话时坐席插话，重叠 {overlap:.1f} 秒",
        )

    def on_utterance(self, utt: UtteranceRecord, call: CallState, judged: set[int]) -> Iterable[Detection]:
        if utt.speaker == "agent":
            return self._judge(utt, call, judged)
        out: list[Detection] = []
        for a in reversed(call.agent):
            if a.end < utt.start:
                break
            out += self._judge(a, call, judged)
        return out
