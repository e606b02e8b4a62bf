"""Section B, how the agent speaks: pace, volume, honorifics, rash promises (seed 001)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Annotated, Iterable

from pydantic import Field

from rules.base import Detection, Rule
from rules.findings import Evidence
from rules.settings import PhraseList, Positive, PositiveSeconds, Strict
from rules.state import CallState, UtteranceRecord


# --- speech.rate --------------------------------------------------------------------

class SpeechRateOptions(Strict):
    max_chars_per_s: Positive
    window_s: PositiveSeconds  # only agent utterances ending within this window are measured together
    min_speech_s: PositiveSeconds  # the pace is judged over the agent's last this-many seconds of speech
    rearm_below: Positive  # a new fast stretch starts only after the pace fell below this


@dataclass
class RateMemory:
    fast: Detection | None = None


class SpeechRate(Rule[SpeechRateOptions]):
    rule_id = "speech.rate"
    options_model = SpeechRateOptions

    def new_memory(self) -> RateMemory:
        return RateMemory()

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: RateMemory) -> Iterable[Detection]:
        if utt.speaker != "agent":
            return ()
        # The agent's most recent speech, just long enough to judge: calm words said
        # a while ago must not dilute a hurried stretch.
        window: list[UtteranceRecord] = []
        seconds = 0.0
        for a in reversed(call.agent):
            if a.end < utt.end - self.options.window_s or seconds >= self.options.min_speech_s:
                break
            window.append(a)
            seconds += a.duration
        window.reverse()
        if seconds < self.options.min_speech_s:
            return ()
        rate = sum(len(a.norm) for a in window) / seconds
        if rate <= self.options.max_chars_per_s:
            if rate < self.options.rearm_below:
                mem.fast = None
            return ()
        if mem.fast is not None:
            mem.fast.end = utt.end
            return ()
        # Point at where the hurrying began, not at the calm words earlier in the window.
        fast = [a for a in window if a.duration > 0 and len(a.norm) / a.duration > self.options.max_chars_per_s]
        mem.fast = Detection(
            t=(fast[0] if fast else utt).start,
            end=utt.end,
            evidence=[a.evidence() for a in window[-3:]],
            detail=f"坐席语速 {rate:.1f} 字/秒（上限 {self.options.max_chars_per_s} 字/秒）",
            values={"rate": round(rate, 1)},
        )
        return [mem.fast]

    def still_holds(self, detection: Detection, call: CallState, mem: RateMemory) -> bool:
        # The hurried stretch lasts until the pace falls below `rearm_below`, which ends it in memory.
        return mem.fast is detection


# --- speech.volume ------------------------------------------------------------------

class SpeechVolumeOptions(Strict):
    max_deviation_db: Positive  # further than this from the agent's own median
    min_utterances: Annotated[int, Field(ge=3)]


class SpeechVolume(Rule[SpeechVolumeOptions]):
    rule_id = "speech.volume"
    options_model = SpeechVolumeOptions

    def on_finish(self, call: CallState, mem: None) -> Iterable[Detection]:
        measured = [(a, a.level_db) for a in call.agent if a.level_db is not None]
        if len(measured) < self.options.min_utterances:
            return ()
        median = statistics.median(level for _, level in measured)
        out = []
        for a, level in measured:
            delta = level - median
            if abs(delta) > self.options.max_deviation_db:
                word = "过高" if delta > 0 else "过低"
                out.append(
                    Detection(
                        t=a.start,
                        evidence=[a.evidence()],
                        detail=f"音量{word}：{level:.0f} dBFS，比坐席自己的中位数 {median:.0f} dBFS {'高' if delta > 0 else '低'} {abs(delta):.0f} dB",
                        values={"delta_db": round(delta)},
                    )
                )
        return out


# --- language.polite ----------------------------------------------------------------

class PoliteOptions(Strict):
    min_plain_you: Annotated[int, Field(ge=1)]  # fewer plain 你 than this is not judged (ASR swaps 您/你)
    max_plain_you_share: Annotated[float, Field(gt=0.0, le=1.0)]
    plain_you_exclude: PhraseList  # 你好 is a correct greeting per seed 001
    courtesy: PhraseList  # 请/谢谢/麻烦您 …
    min_agent_chars: Annotated[int, Field(ge=1)]  # a call this short cannot be judged for courtesy words


class LanguagePolite(Rule[PoliteOptions]):
    rule_id = "language.polite"
    options_model = PoliteOptions

    def compile(self) -> None:
        self._courtesy = self.ctx.matcher(self.options.courtesy)
        self._plain = self.ctx.matcher(["你"], self.options.plain_you_exclude)
        self._honorific = self.ctx.matcher(["您"])

    def on_finish(self, call: CallState, mem: None) -> Iterable[Detection]:
        if not call.agent:
            return ()
        plain = [(a, len(self._plain.find_all(a.norm))) for a in call.agent]
        n_plain = sum(n for _, n in plain)
        n_hon = sum(len(self._honorific.find_all(a.norm)) for a in call.agent)
        chars = sum(len(a.norm) for a in call.agent)
        reasons: list[str] = []
        evidence: list[Evidence] = []
        t = call.agent[0].start
        if n_plain >= self.options.min_plain_you and n_plain / (n_plain + n_hon) > self.options.max_plain_you_share:
            reasons.append(f"称呼客户用「你」{n_plain} 次、「您」{n_hon} 次")
            offenders = [a for a, n in plain if n]
            t = offenders[0].start
            evidence += [a.evidence() for a in offenders[:3]]
        if chars >= self.options.min_agent_chars and not any(self._courtesy.search(a.norm) for a in call.agent):
            reasons.append("整通电话没有用「请」「谢谢」等敬语")
            if not evidence:
                evidence = [a.evidence() for a in call.agent[:2]]
        if not reasons:
            return ()
        return [Detection(t=t, evidence=evidence, detail="；".join(reasons))]


# --- promise.rash -------------------------------------------------------------------

class RashPromiseOptions(Strict):
    phrases: PhraseList
    exclude: PhraseList  # negations: 不能保证, 没法百分之百 …


class PromiseRash(Rule[RashPromiseOptions]):
    rule_id = "promise.rash"
    options_model = RashPromiseOptions

    def compile(self) -> None:
        self._promise = self.ctx.matcher(self.options.phrases, self.options.exclude)

    def on_utterance(self, utt: UtteranceRecord, call: CallState, mem: None) -> Iterable[Detection]:
        if utt.speaker != "agent":
            return ()
        hit = self._promise.search(utt.norm)
        if hit is None:
            return ()
        return [Detection(t=utt.start, evidence=[utt.evidence()], detail=f"坐席在电话中轻易承诺：「{hit.phrase}」", values={"phrase": hit.phrase})]

