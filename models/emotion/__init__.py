"""Customer emotion: text sentiment (transformers), voice arousal (Praat), fusion and the
per-call curve with turn events.

The lead's runtime builds these once per process (``SentimentClassifier``) or once per
call (``VoiceArousal``, ``EmotionTracker``); nothing here is a module-level singleton.
"""

from .config import LABELS, EmotionConfig, SentimentConfig, TrackerConfig, VoiceConfig
from .encoder_build import default_cache_dir, ensure_e5_model
from .results import EmotionSample, EmotionTurn, TextSentiment, VoiceFeatures
from .schema import EmotionOut, EmotionTurnOut, TextSentimentOut
from .text import SentimentClassifier
from .tracker import EmotionTracker
from .voice import VoiceArousal

__all__ = [
    "LABELS",
    "EmotionConfig",
    "SentimentConfig",
    "TrackerConfig",
    "VoiceConfig",
    "default_cache_dir",
    "ensure_e5_model",
    "EmotionSample",
    "EmotionTurn",
    "TextSentiment",
    "VoiceFeatures",
    "EmotionOut",
    "EmotionTurnOut",
    "TextSentimentOut",
    "SentimentClassifier",
    "EmotionTracker",
    "VoiceArousal",
]
