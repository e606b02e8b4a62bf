"""What the rules layer hands out: prompts (live), findings, figures and the report (post)."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict

from rules.settings import Severity


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Evidence(_Wire):
    """One piece of evidence: an utterance, a telephony event, a stretch of time, an emotion sample."""

    kind: Literal["utterance", "event", "span", "emotion", "call"]
    t: float
    end: float | None = None
    speaker: Literal["agent", "customer"] | None = None
    text: str | None = None
    event: str | None = None


class RecoveryHint(_Wire):
    """The next step of the six-step recovery and a sentence the agent can say."""

    step: str
    suggestion: str
    done: list[str]


class Finding(_Wire):
    rule_id: str
    severity: Severity
    t: float
    end: float | None = None
    evidence: list[Evidence]
    detail: str
    prompt: str
    seed: str
    recovery: RecoveryHint | None = None


class Prompt(_Wire):
    """A live prompt for the agent's screen."""

    rule_id: str
    severity: Severity
    t: float  # where in the call the breach is
    emitted_at: float  # call time of the evaluation step that raised it
    text: str
    detail: str
    evidence: list[Evidence]
    recovery: RecoveryHint | None = None
    provisional: bool = False  # a reminder before a breach (e.g. say goodbye), not a finding
    # In the report: the step at which its condition stopped holding and it came off the screen (None: it stayed
    # until the agent dismissed it or the call ended). Always None on the prompt as it is raised.
    cleared_at: float | None = None

    @property
    def prompt_id(self) -> str:
        """Its id on the wire and on the agent's screen: the rule and where in the call."""
        return f"{self.rule_id}@{self.t:.2f}"


class PromptCleared(_Wire):
    """A live prompt whose condition stopped holding: it comes off the agent's screen. Its finding stays."""

    rule_id: str
    prompt_id: str
    emitted_at: float  # call time of the evaluation step that cleared it


# What the engine hands the live pipeline at each step, in the order it happened.
LiveMessage = Union[Prompt, PromptCleared]


class Deduction(_Wire):
    rule_id: str
    findings: int
    weight: float
    cap: float
    points: float


class RecoveryFigure(_Wire):
    complaint: bool
    lowest_valence: float | None = None
    lowest_t: float | None = None
    end_valence: float | None = None
    gain: float | None = None
    recovered: bool | None = None
    source: Literal["emotion", "text", "none"] = "none"


class DeadAirFigure(_Wire):
    seconds: float
    t: float | None = None


class CallFigures(_Wire):
    duration_s: float
    ring_count: int | None
    agent_talk_s: float
    customer_talk_s: float
    talk_ratio: float | None  # agent share of all talk time
    longest_dead_air: DeadAirFigure
    agent_speech_rate: float | None  # characters per second of agent speech
    complaint_recovered: RecoveryFigure


class CallReport(_Wire):
    call_id: str
    # The transcript the findings were judged on: the live finals (what the agent saw, and the report sent
    # when the call ends) or the second pass over the whole call (the stored report, and audits).
    transcript: Literal["live", "second_pass"] = "live"
    score: float
    deductions: list[Deduction]
    findings: list[Finding]
    figures: CallFigures
    prompts: list[Prompt] = []
