"""Pydantic models for the parts of the rules file every rule shares.

Nothing here has a default value for a threshold or a phrase list: those come from
``defaults.yaml`` so that the shipped file is the one place a value is set.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["info", "warn", "breach"]
Kind = Literal["live", "post"]

PositiveSeconds = Annotated[float, Field(gt=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


def check_phrases(phrases: list[str]) -> list[str]:
    for p in phrases:
        if p.startswith("re:"):
            try:
                re.compile(p[3:])
            except re.error as err:
                raise ValueError(f"bad regular expression {p!r}: {err}") from None
    return phrases


# A phrase list: plain phrases, or regular expressions over normalised text prefixed "re:".
PhraseList = Annotated[list[Annotated[str, Field(min_length=1)]], AfterValidator(check_phrases)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)




def _hhmm(value: str) -> time:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59 or (int(m.group(1)) == 24 and int(m.group(2)) > 0):
        raise ValueError(f"expected a time of day as HH:MM, got {value!r}")
    h, mnt = int(m.group(1)), int(m.group(2))
    return time(23, 59, 59) if h == 24 else time(h, mnt)


class TimeWindow(Strict):
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _valid(cls, v: str) -> str:
        _hhmm(v)
        return v

    @model_validator(mode="after")
    def _ordered(self) -> "TimeWindow":
        if _hhmm(self.end) <= _hhmm(self.start):
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")
        return self

    def contains(self, t: time) -> bool:
        return _hhmm(self.start) <= t <= _hhmm(self.end)

    def contains_open_end(self, t: time) -> bool:
        return _hhmm(self.start) <= t < _hhmm(self.end)


class BusinessHours(Strict):
    """When outbound calls may be placed: inside ``window``, outside every ``quiet`` window."""

    window: TimeWindow
    quiet: list[TimeWindow]
    days: list[Annotated[int, Field(ge=1, le=7)]]  # ISO weekdays, 1 = Monday


class Deployment(Strict):
    company_name: Annotated[str, Field(min_length=1)]
    company_aliases: PhraseList
    # Names the recogniser should favour besides the company's (products, brands, place names).
    hotwords: PhraseList
    department: str | None
    staff_number_pattern: str
    ring_cadence_s: PositiveSeconds
    business_hours: BusinessHours
    timezone: str

    @field_validator("staff_number_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as err:
            raise ValueError(f"bad regular expression: {err}") from None
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


class EngineSettings(Strict):
    replay_tick_s: PositiveSeconds  # clock step when a finished timeline is replayed
    default_cooldown_s: NonNegative
    prompt_after_hangup: bool  # prompts raised after the hangup step reach nobody


class Lexicon(Strict):
    """Phrase lists several rules share. Each list replaces the default as a whole."""

    backchannel: PhraseList
    backchannel_max_chars: Annotated[int, Field(ge=1)]
    greeting: PhraseList
    apology: PhraseList
    apology_exclude: PhraseList
    empathy: PhraseList
    empathy_exclude: PhraseList
    thanks: PhraseList
    goodbye: PhraseList
    customer_closing: PhraseList
    complaint: PhraseList
    complaint_weak: PhraseList
    complaint_exclude: PhraseList



class NegativeTurn(Strict):
    """When the customer counts as upset: emotion samples, or complaint phrases in text."""

    source: Literal["emotion", "text", "emotion_or_text"]
    valence_below: Annotated[float, Field(ge=-1.0, le=1.0)]
    strong_valence_below: Annotated[float, Field(ge=-1.0, le=1.0)]
    labels: list[Literal["angry", "upset", "neutral", "satisfied"]]
    strong_labels: list[Literal["angry", "upset", "neutral", "satisfied"]]
    min_score: Annotated[int, Field(ge=1)]
    accumulate_s: PositiveSeconds  # signals this close together add up
    episode_gap_s: PositiveSeconds  # calm this long and a new outburst is a new episode


# A name people read on the agent screen, the supervisor board and the QA report (rules/names.py).
DisplayName = Annotated[str, Field(min_length=1, max_length=40)]


class RecoveryStep(Strict):
    name: DisplayName  # shown as it is, and sent as the prompt's `recovery.step`
    done_when: PhraseList  # agent phrases that show the step was taken
    suggestion: str



class Recovery(Strict):
    """The six-step recovery of seed 000: 感受 → 道歉 → 解决 → 调查 → 加分 → 预防."""

    name: DisplayName  # what the pages call the method, before a step's name (六步法·感受)
    steps: Annotated[list[RecoveryStep], Field(min_length=1)]


OptionsT = TypeVar("OptionsT", bound=BaseModel)


class SeverityNames(Strict):
    """What each severity is called on every page; the keys are the severities themselves."""

    info: DisplayName
    warn: DisplayName
    breach: DisplayName


class RuleSettings(Strict, Generic[OptionsT]):
    name: DisplayName  # the rule's short name on every page; the id stays the key everywhere else
    enabled: bool
    kind: Kind
    severity: Severity
    weight: NonNegative  # points deducted per finding
    cap: NonNegative  # most points this rule may deduct from one call
    cooldown_s: NonNegative | None  # None: engine.default_cooldown_s
    seed: str
    prompt: str
    suggest_recovery: bool
    options: OptionsT
