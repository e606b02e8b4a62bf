"""When the customer turns negative: one decision that all complaint rules share."""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.base import RuleContext
from rules.findings import Evidence
from rules.state import CallState, NegativeOnset, UtteranceRecord
from rules.timeline import EmotionSample


@dataclass(frozen=True)
class _Signal:
    t: float
    floor_at: float
    evidence: Evidence
    source: str
    points: int


@dataclass
class NegativeTurnDetector:
    """Turns emotion samples and complaint phrases into complaint episodes.

    Each signal scores points: an angry voice or a real complaint (投诉, 你们这是什么服务,
    我都打了三次电话了) is enough on its own; a grumble (凭什么, 怎么回事) or a merely
    upset voice needs a second signal within ``accumulate_s``. Emotion is used when the
    pipeline has it; the phrases keep the rules working on timelines without it. One long
    outburst is one episode; a new one starts after ``episode_gap_s`` of calm.
    """

    ctx: RuleContext
    _pending: list[_Signal] = field(default_factory=list)

    def _uses(self, source: str) -> bool:
        return self.ctx.negative.source in (source, "emotion_or_text")

    def _add(self, call: CallState, signal: _Signal) -> NegativeOnset | None:
        neg = self.ctx.negative
        in_episode = call.last_negative_t is not None and call.negative_onsets and signal.t - call.last_negative_t <= neg.episode_gap_s
        if in_episode:
            call.last_negative_t = max(call.last_negative_t or signal.t, signal.t)
            return None
        self._pending = [s for s in self._pending if signal.t - s.t <= neg.accumulate_s] + [signal]
        if sum(s.points for s in self._pending) < neg.min_score:
            return None
        first = self._pending[0]
        self._pending = []
        call.last_negative_t = signal.t
        onset = NegativeOnset(t=first.t, floor_at=signal.floor_at, evidence=first.evidence, source=first.source)
        call.negative_onsets.append(onset)
        call.recovery.done.clear()
        return onset

    def on_utterance(self, utt: UtteranceRecord, call: CallState) -> NegativeOnset | None:
        if utt.speaker != "customer" or not self._uses("text"):
            return None
        if self.ctx.complaint.search(utt.norm):
            points = 2
        elif self.ctx.complaint_weak.search(utt.norm):
            points = 1
        else:
            return None
        return self._add(call, _Signal(utt.start, utt.end, utt.evidence(), "text", points))

    def on_emotion(self, sample: EmotionSample, call: CallState) -> NegativeOnset | None:
        if sample.speaker != "customer" or not self._uses("emotion"):
            return None
        neg = self.ctx.negative
        label = sample.label
        if sample.valence < neg.strong_valence_below or (label is not None and label in neg.strong_labels):
            points = 2
        elif sample.valence < neg.valence_below or (label is not None and label in neg.labels):
            points = 1
        else:
            return None
        # A sample scores the customer's utterance around it: the outburst starts where
        # that utterance starts, and the agent gets the floor when it ends.
        t, floor_at = sample.t, sample.t
        for u in reversed(call.customer):
            if u.start <= sample.t <= u.end + 0.5:
                t, floor_at = u.start, max(floor_at, u.end)
                break
        text = f"客户情绪 valence={sample.valence:+.2f}" + (f"，{label}" if label else "")
        evidence = Evidence(kind="emotion", t=sample.t, speaker="customer", text=text)
        return self._add(call, _Signal(t, floor_at, evidence, "emotion", points))
