"""Every rule id of the rulebook and the class that implements it."""

from __future__ import annotations

from rules.base import Rule
from rules.closing import CallerHangsUpFirst, Goodbye, RedialDropped, SummaryThanks
from rules.complaint import ApologyWording, EmpathyFirst, FollowUp, NoArgue, OwnIt, Recovered, ResolutionPath
from rules.hold import HoldApology, TransferHoldFirst
from rules.intake import IntakeConfirm, WrongNumberNoBlame
from rules.listening import ListenDeadAir, ListenNoInterrupt, ListenNoSilence
from rules.opening import AnswerRings, BareWei, OpeningGreeting, OutboundHours, OutboundSelfIntro
from rules.speech import LanguagePolite, PromiseRash, SpeechRate, SpeechVolume

# In rulebook order (sections A–D); the report lists findings in call-time order anyway.
RULE_CLASSES: tuple[type[Rule], ...] = (
    AnswerRings,
    BareWei,
    OpeningGreeting,
    OutboundHours,
    OutboundSelfIntro,
    ListenNoSilence,
    ListenDeadAir,
    ListenNoInterrupt,
    HoldApology,
    TransferHoldFirst,
    SpeechRate,
    SpeechVolume,
    LanguagePolite,
    PromiseRash,
    WrongNumberNoBlame,
    IntakeConfirm,
    EmpathyFirst,
    ApologyWording,
    NoArgue,
    OwnIt,
    ResolutionPath,
    FollowUp,
    Recovered,
    SummaryThanks,
    Goodbye,
    CallerHangsUpFirst,
    RedialDropped,
)

RULES_BY_ID: dict[str, type[Rule]] = {cls.rule_id: cls for cls in RULE_CLASSES}
RULE_IDS: tuple[str, ...] = tuple(RULES_BY_ID)
