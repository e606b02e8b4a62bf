"""callwatch rules layer: one engine over a call's timeline, live and post-call.

Public entry points:

- :class:`rules.engine.RulesEngine` — live, incremental (``feed`` / ``advance`` / ``finish``).
- :func:`rules.engine.audit_timeline` — post-call audit of a finished :class:`CallTimeline`.
- :func:`rules.config.load_rules_config` — defaults merged with a deployment's YAML file.
- :func:`rules.cli.audit_timeline_main` — the ``callwatch audit-timeline`` command body.
"""

from rules.config import RulesConfig, RulesConfigError, load_rules_config
from rules.engine import RulesEngine, audit_timeline
from rules.findings import CallFigures, CallReport, Evidence, Finding, Prompt, PromptCleared, RecoveryHint
from rules.timeline import (
    CallEvent,
    CallHeader,
    CallTimeline,
    EmotionSample,
    TimelineError,
    Utterance,
    VoiceSegment,
    load_timeline,
)

__all__ = [
    "CallEvent",
    "CallFigures",
    "CallHeader",
    "CallReport",
    "CallTimeline",
    "EmotionSample",
    "Evidence",
    "Finding",
    "Prompt",
    "PromptCleared",
    "RecoveryHint",
    "RulesConfig",
    "RulesConfigError",
    "RulesEngine",
    "TimelineError",
    "Utterance",
    "VoiceSegment",
    "audit_timeline",
    "load_rules_config",
    "load_timeline",
]
