"""Section B, handling the caller: wrong numbers without blame, W2H intake (seed 001)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Iterable

from pydantic import Field

from rules.base import Detection, Rule
from rules.findings import Evidence
from rules.settings import PhraseList, PositiveSeconds, Strict
from rules.state import CallState, UtteranceRecord


# --- wrong_number.no_blame ----------------------------------------------------------

class WrongNumberOptions(Strict):
    wrong_number: PhraseList  # 打错了/拨错了 …, said by either party
    blame: PhraseList
    window_s: PositiveSeconds  # agent replies this soon after the wrong number came up are judged


@dataclass
class WrongNumberMemory:
    since: float | None = None
    fired: bool = False


class WrongNumberNoBlame(Rule[WrongNumberOptions]):
    rule_id = "wrong_number.no_blame"
    options_model = WrongNumberOptions

    def compile(self) -> None:
        self._wrong = self.ctx.matcher(self.options.wrong_number)
        self._blame = self.ctx.matcher(self.options.blame)

    def new_memory(self) -> WrongNumberMemory:
        return WrongNumberMemory()

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: WrongNumberMemory) -> Iterable[Detection]:
        if mem.since is None and self._wrong.search(utt.norm):
            mem.since = utt.start
        if mem.since is None or mem.fired or utt.speaker != "agent" or utt.start > mem.since + self.options.window_s:
            return ()
        hit = self._blame.search(utt.norm)
        if hit is None:
            return ()
        mem.fired = True
        return [Detection(t=utt.start, evidence=[utt.evidence()], detail=f"对打错电话的客户说了责备的话：「{hit.phrase}」")]


# --- intake.confirm -----------------------------------------------------------------

class IntakeOptions(Strict):
    directions: list[str]
    min_agent_utterances: Annotated[int, Field(ge=1)]  # shorter calls are not judged
    identity: PhraseList  # the agent asks or confirms who is calling (name, number, account)
    purpose: PhraseList  # the agent asks or restates what the call is about
    skip_when: PhraseList  # calls where intake makes no sense (a wrong number)
    # A customer who opens by describing the matter has given the purpose; the agent need not ask.
    customer_states_purpose_chars: Annotated[int, Field(ge=1)]


class IntakeConfirm(Rule[IntakeOptions]):
    rule_id = "intake.confirm"
    options_model = IntakeOptions

    def compile(self) -> None:
        self._identity = self.ctx.matcher(self.options.identity)
        self._purpose = self.ctx.matcher(self.options.purpose)
        self._skip = self.ctx.matcher(self.options.skip_when)

    def on_finish(self, call: CallState, mem: None) -> Iterable[Detection]:
        if call.header.direction not in self.options.directions or len(call.agent) < self.options.min_agent_utterances:
            return ()
        if any(self._skip.search(u.norm) for u in call.utterances):
            return ()
        missing = []
        if not any(self._identity.search(a.norm) for a in call.agent):
            missing.append("没有询问或核实来电人身份（姓名/电话/单号）")
        if not any(self._purpose.search(a.norm) for a in call.agent) and not self._customer_stated_purpose(call):
            missing.append("没有询问或复述来电事项")
        if not missing:
            return ()
        first = call.agent[0]
        return [
            Detection(
                t=first.start,
                evidence=[Evidence(kind="call", t=first.start, text="；".join(missing))],
                detail="；".join(missing),
            )
        ]

    def _customer_stated_purpose(self, call: CallState) -> bool:
        first_agent = call.agent[0]
        for c in call.customer:
            if c.start >= first_agent.start and len(c.norm) >= self.options.customer_states_purpose_chars:
                return True
        return False
