"""The contract between a rule and the engine.

A rule is written once. The engine calls the same handlers while a call is live (as
items arrive and the clock ticks) and when a finished timeline is replayed for a
post-call audit, so there is no separate post-call implementation of a rule.

Rule objects are compiled once per rules file and shared across calls; anything a rule
must remember about one call lives in the memory object it creates in ``new_memory``.

A live prompt stays on the agent's screen until the agent dismisses it, unless its rule says, through
``still_holds``, that the condition that raised it has stopped holding: then the engine takes it off
(``prompt_cleared``). The finding stays in the report either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Iterable, TypeVar

from pydantic import BaseModel

from rules.findings import Evidence
from rules.settings import Deployment, Lexicon, NegativeTurn, Recovery, RuleSettings
from rules.state import CallState, NegativeOnset, UtteranceRecord
from rules.text import CompanyNameMatcher, PhraseMatcher, TextNormalizer, is_backchannel
from rules.timeline import CallEvent, EmotionSample


@dataclass
class Detection:
    """A rule's raw finding; the engine adds severity, prompt text and seed from the rules file."""

    t: float
    evidence: list[Evidence]
    detail: str
    end: float | None = None
    # A reminder before the breach happens (say goodbye before hang-up): prompted, never scored.
    provisional: bool = False
    # Values for the prompt template, e.g. {rings}.
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class RuleContext:
    """Compiled shared vocabulary and deployment facts, built once per rules file."""

    normalize: TextNormalizer
    deployment: Deployment
    lexicon: Lexicon
    negative: NegativeTurn
    backchannel_tokens: list[str]
    greeting: PhraseMatcher
    apology: PhraseMatcher
    empathy: PhraseMatcher
    thanks: PhraseMatcher
    goodbye: PhraseMatcher
    customer_closing: PhraseMatcher
    complaint: PhraseMatcher
    complaint_weak: PhraseMatcher
    company: CompanyNameMatcher
    recovery: Recovery
    recovery_steps: list[tuple[str, PhraseMatcher]]

    @classmethod
    def build(cls, deployment: Deployment, lexicon: Lexicon, negative: NegativeTurn, recovery: Recovery) -> "RuleContext":
        norm = TextNormalizer()

        def m(phrases: list[str], exclude: list[str] | None = None) -> PhraseMatcher:
            return PhraseMatcher(phrases, norm, exclude or [])

        return cls(
            normalize=norm,
            deployment=deployment,
            lexicon=lexicon,
            negative=negative,
            backchannel_tokens=[norm(t) for t in lexicon.backchannel if norm(t)],
            greeting=m(lexicon.greeting),
            apology=m(lexicon.apology, lexicon.apology_exclude),
            empathy=m(lexicon.empathy + lexicon.apology, lexicon.empathy_exclude + lexicon.apology_exclude),
            thanks=m(lexicon.thanks),
            goodbye=m(lexicon.goodbye),
            customer_closing=m(lexicon.customer_closing),
            complaint=m(lexicon.complaint, lexicon.complaint_exclude),
            complaint_weak=m(lexicon.complaint_weak, lexicon.complaint_exclude),
            company=CompanyNameMatcher([deployment.company_name, *deployment.company_aliases], norm),
            recovery=recovery,
            recovery_steps=[(s.name, m(s.done_when)) for s in recovery.steps],
        )

    def is_backchannel(self, norm: str) -> bool:
        return is_backchannel(norm, self.backchannel_tokens, self.lexicon.backchannel_max_chars)

    def matcher(self, phrases: list[str], exclude: list[str] | None = None) -> PhraseMatcher:
        return PhraseMatcher(phrases, self.normalize, exclude or [])


OptionsT = TypeVar("OptionsT", bound=BaseModel)


class Rule(Generic[OptionsT]):
    """Base class: every handler returns the detections it completes at this step."""

    rule_id: ClassVar[str]
    options_model: ClassVar[type[BaseModel]]

    def __init__(self, settings: RuleSettings[OptionsT], ctx: RuleContext) -> None:
        self.settings = settings
        self.options: OptionsT = settings.options
        self.ctx = ctx
        self.compile()

    def compile(self) -> None:
        """Build matchers from options; called once per rules file."""

    def new_memory(self) -> Any:
        return None

    def on_event(self, event: CallEvent, call: CallState, mem: Any) -> Iterable[Detection]:
        return ()

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: Any) -> Iterable[Detection]:
        return ()

    def on_emotion(self, sample: EmotionSample, call: CallState, mem: Any) -> Iterable[Detection]:
        return ()

    def on_negative(self, onset: NegativeOnset, call: CallState, mem: Any) -> Iterable[Detection]:
        return ()

    def on_tick(self, call: CallState, mem: Any) -> Iterable[Detection]:
        return ()

    def on_finish(self, call: CallState, mem: Any) -> Iterable[Detection]:
        return ()

    def still_holds(self, detection: Detection, call: CallState, mem: Any) -> bool:
        """Whether the condition behind one of this rule's live prompts still holds.

        A rule whose prompt is about something still going on, that the agent or the call can end (a silence, an
        apology not yet said, a hurried pace), overrides this. After every step the engine asks it about each
        of the rule's prompts still on the agent's screen, and clears the prompt once the answer is False; a
        detection for which it is False at once is reported but never prompted. It is asked often and told
        nothing: a cheap look at ``call`` and ``mem``, without side effects. Rules that keep the default (a
        one-off: what was said cannot be unsaid) are never asked; the agent dismisses their prompts.
        """
        return True

    @classmethod
    def uses_ticks(cls) -> bool:
        return cls.on_tick is not Rule.on_tick

    @classmethod
    def clears(cls) -> bool:
        return cls.still_holds is not Rule.still_holds
