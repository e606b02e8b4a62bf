"""Result types inside the process (dataclasses). ``schema.py`` has the wire forms."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextSentiment:
    """What the text model says about one utterance."""

    label: str  # angry / upset / neutral / satisfied
    polarity: str  # negative / neutral / positive
    valence: float  # -1 (negative) .. 1 (positive)
    confidence: float  # probability of the chosen polarity (0 for unusable input)
    probs: dict[str, float] = field(default_factory=dict)  # per label

    @property
    def anger(self) -> float:
        return self.probs.get("angry", 0.0)


@dataclass(frozen=True)
class VoiceFeatures:
    """Prosodic measurements of one stretch of the customer's leg."""

    duration_s: float
    voiced_s: float  # seconds with a pitch
    loudness_db: float | None  # mean intensity over speech frames (dB, uncalibrated)
    pitch_st: float | None  # median pitch in semitones re 100 Hz
    pitch_range_st: float | None  # 10th..90th percentile spread (semitones)
    rate_sps: float | None  # syllables (or characters) per second of speech

    @property
    def usable(self) -> bool:
        return self.loudness_db is not None and self.pitch_st is not None


@dataclass(frozen=True)
class EmotionSample:
    """One customer utterance on the call's emotion curve."""

    t: float  # seconds from call start (the utterance's end, or whatever the caller uses)
    valence: float  # fused valence of this utterance, -1..1
    arousal: float  # fused arousal, 0..1
    label: str  # angry / upset / neutral / satisfied
    confidence: float  # 0..1
    smoothed_valence: float  # the curve
    smoothed_arousal: float
    negative: bool  # the tracker's state after this sample (True between a turn and a recovery)
    voice_arousal: float | None = None
    text_label: str | None = None


@dataclass(frozen=True)
class EmotionTurn:
    """A moment the customer turns: ``turned_negative``, ``turned_angry`` or ``recovered``."""

    kind: str
    t: float
    valence: float  # smoothed valence at the event
    label: str  # the utterance label that triggered it
    index: int  # sample index in the call
    lowest_valence: float  # lowest smoothed valence so far (for recovery: the worst point)
