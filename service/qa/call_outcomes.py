"""What a stored call says about its customer's mood and its live prompts, for sampling plans and trends
(docs/qa.md, Definitions). Pure: the rows are read elsewhere (`service.qa.call_facts`).

The customer's mood is the emotion layer's per-utterance results (`utterances.emotion`, docs/emotion.md):
each customer utterance's `label` (angry / upset / neutral / satisfied) and `turn`, set on the utterance where
the smoothed valence crossed into negative (`negative`: it reached −0.35, or an angry utterance with
confidence ≥ 0.8) or came back after a turn (`recovered`: back to −0.05 or above).

- **turned negative**: some customer utterance of the call carries `turn: negative`.
- **recovered**: it turned negative, and the call's last turn is `recovered` (a customer who recovered and
  turned again did not recover).
- **ended negative** (a sampling plan's always-pick): the call's last turn is `negative` (turned and never
  came back), or the customer's last utterance with an emotion is labelled `angry`.

Prompts: what the agent's screen was sent is stored per call (`call_prompts`, live calls only: an audited
recording showed nobody anything); a dismissal is stored with it. Whether a prompt's condition cleared is in
the call's stored report (`prompts[].cleared_at`, docs/report.md), matched by the prompt's id.

- **shown**: a stored prompt of the call.
- **heeded**: a shown prompt whose condition cleared while the call went on (`cleared_at` set): the silence
  was broken, the apology said, the pace slowed. Only prompts of rules that clear can be heeded; a one-off
  (a rash promise) never is. Dismissing a prompt is counted apart and is no heeding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rules.findings import Prompt


@dataclass(frozen=True)
class MoodOutcome:
    turned_negative: bool
    recovered: bool
    ended_negative: str | None  # why it ended negative, in words; None: it did not


NO_MOOD = MoodOutcome(False, False, None)


def mood_outcome(samples: Sequence[Mapping[str, Any]]) -> MoodOutcome:
    """The outcome of the customer's emotion results, in call order."""
    if not samples:
        return NO_MOOD
    turns = [s["turn"] for s in samples if s.get("turn") in ("negative", "recovered")]
    last_turn = turns[-1] if turns else None
    turned = "negative" in turns
    ended = None
    if last_turn == "negative":
        ended = "the customer turned negative and did not recover"
    elif samples[-1].get("label") == "angry":
        ended = "the customer's last words were angry"
    return MoodOutcome(turned, turned and last_turn == "recovered", ended)


@dataclass(frozen=True)
class PromptOutcome:
    shown: int
    heeded: int
    dismissed: int


NO_PROMPTS = PromptOutcome(0, 0, 0)


def cleared_prompt_ids(report_prompts: Iterable[Mapping[str, Any]]) -> set[str]:
    """The ids of the report's prompts whose condition cleared (the id as the agent's screen had it)."""
    cleared: set[str] = set()
    for p in report_prompts:
        if p.get("cleared_at") is None:
            continue
        try:
            cleared.add(Prompt.model_validate(p).prompt_id)
        except ValidationError:  # not a prompt as the rules engine writes one: it names no prompt shown
            continue
    return cleared


def prompt_outcome(shown: Sequence[tuple[str, bool]], cleared: set[str]) -> PromptOutcome:
    """`shown`: (prompt id, whether the agent dismissed it) of each stored prompt; `cleared`: the report's
    cleared prompt ids."""
    return PromptOutcome(len(shown), sum(pid in cleared for pid, _ in shown), sum(dismissed for _, dismissed in shown))
