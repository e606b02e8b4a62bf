"""The rules engine: one per call, fed live or by replaying a finished timeline.

Live use (the pipeline owns the loop)::

    book = RuleBook(load_rules_config(path))          # once per process / rules file
    engine = RulesEngine(book, header)                 # once per call
    messages = engine.feed(item)                       # utterance (final or partial), event,
                                                       # emotion sample, voice segment
    messages = engine.advance(now)                     # clock tick, ~every 0.5 s
    report = engine.finish()                           # after the hangup

Each step returns the prompts it raised and the prompts it cleared (their condition stopped
holding, see ``Rule.still_holds``), in order; usually nothing.

Post-call use: ``audit_timeline(timeline, config)`` replays the timeline through the
same engine, with clock ticks, and returns the report. A replay's work is bounded by the
timeline's length (every time is at most `MAX_CALL_TIME_S`); a caller that cannot wait that
long passes `stop`, asked between steps, and gets `ReplayStopped`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Union

from rules.base import Detection, Rule, RuleContext
from rules.catalog import RULE_CLASSES
from rules.complaint import Recovered
from rules.config import RulesConfig
from rules.figures import compute_figures
from rules.findings import CallReport, Finding, LiveMessage, Prompt, PromptCleared, RecoveryHint
from rules.names import name_table
from rules.negative import NegativeTurnDetector
from rules.score import score_findings
from rules.state import CallState, NegativeOnset, RecoveryTracker, UtteranceRecord
from rules.timeline import (
    MAX_CALL_TIME_S,
    CallEvent,
    CallHeader,
    CallTimeline,
    EmotionSample,
    RelatedCall,
    TimelineError,
    Utterance,
    VoiceSegment,
)

TimelineItem = Union[CallEvent, Utterance, EmotionSample, VoiceSegment]


class RuleBook:
    """A validated rules configuration compiled once (matchers, rule objects); shared by calls."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config
        self.names = name_table(config)  # what every page calls the rules, severities and recovery steps
        self.ctx = RuleContext.build(config.deployment, config.lexicon, config.negative_turn, config.recovery)
        self.rules: list[Rule] = [
            cls(config.rule(cls.rule_id), self.ctx) for cls in RULE_CLASSES if config.rule(cls.rule_id).enabled
        ]
        self.tick_rules = [r for r in self.rules if r.uses_ticks()]
        # The recovery figure is reported even where the rule's finding is switched off.
        self.recovered = Recovered(config.rule(Recovered.rule_id), self.ctx)


@dataclass
class _Recorded:
    rule: Rule
    detection: Detection
    recovery: RecoveryHint | None


@dataclass
class _OnScreen:
    """A prompt of a rule that clears, not cleared yet."""

    rule: Rule
    detection: Detection
    index: int  # in RulesEngine._prompts


class RulesEngine:
    def __init__(
        self,
        rules: RulesConfig | RuleBook,
        call: CallHeader,
        *,
        related_calls: list[RelatedCall] | None = None,
    ) -> None:
        self.book = rules if isinstance(rules, RuleBook) else RuleBook(rules)
        ctx = self.book.ctx
        self.state = CallState(
            header=call,
            recovery=RecoveryTracker([name for name, _ in ctx.recovery_steps]),
            related_calls=related_calls,
        )
        self._memory = {r.rule_id: r.new_memory() for r in self.book.rules}
        self._negative = NegativeTurnDetector(ctx)
        self._recorded: list[_Recorded] = []
        self._prompts: list[Prompt] = []
        self._on_screen: list[_OnScreen] = []
        self._last_prompt_at: dict[str, float] = {}
        self._prompts_closed = False
        self._report: CallReport | None = None
        self._next_index = 0
        self._fed_events: list[CallEvent] = []
        self._fed_emotion: list[EmotionSample] = []
        self._fed_voice: list[VoiceSegment] = []
        self._fed_utterances: list[Utterance] = []

    # --- live API -------------------------------------------------------------------

    def feed(self, item: TimelineItem) -> list[LiveMessage]:
        """Take one new item and return the prompts it completes and clears (usually none)."""
        if self._report is not None:
            raise RuntimeError("the call is finished; start a new engine for a new call")
        new: list[LiveMessage] = []
        if isinstance(item, Utterance):
            if item.partial:
                self._mark_speaking(item.speaker, item.start)
                self._advance_clock(item.end)
            else:
                self._fed_utterances.append(item)
                new += self._on_utterance(item)
        elif isinstance(item, CallEvent):
            self._fed_events.append(item)
            new += self._on_event(item)
        elif isinstance(item, EmotionSample):
            self._fed_emotion.append(item)
            new += self._on_emotion(item)
        elif isinstance(item, VoiceSegment):
            self._on_voice(item)
        else:
            raise TypeError(f"cannot feed {type(item).__name__} to the rules engine")
        return new + self._cleared()

    def advance(self, now: float) -> list[LiveMessage]:
        """A clock tick at call time ``now``: time-based rules (dead air, silence, empathy) fire here."""
        if self._report is not None:
            return []
        self._advance_clock(now)
        out: list[LiveMessage] = []
        for rule in self.book.tick_rules:
            out += self._emit(rule, rule.on_tick(self.state, self._memory[rule.rule_id]))
        return out + self._cleared()

    def finish(self, related_calls: list[RelatedCall] | None = None) -> CallReport:
        """Run the post-call judgements and return the report. Idempotent."""
        if self._report is not None:
            return self._report
        if related_calls is not None:
            self.state.related_calls = related_calls
        self._prompts_closed = True
        for rule in self.book.rules:
            self._emit(rule, rule.on_finish(self.state, self._memory[rule.rule_id]))
        findings = sorted((self._finding(r) for r in self._recorded if not r.detection.provisional), key=lambda f: (f.t, f.rule_id))
        score, deductions = score_findings(findings, self.book.config)
        self._report = CallReport(
            call_id=self.state.header.call_id,
            score=score,
            deductions=deductions,
            findings=findings,
            figures=compute_figures(self.state, self.book.recovered.figure(self.state), self.book.config.deployment.ring_cadence_s),
            prompts=list(self._prompts),
        )
        return self._report

    @property
    def prompts(self) -> list[Prompt]:
        return list(self._prompts)

    def timeline(self) -> CallTimeline:
        """Everything fed so far, as the timeline that storage keeps and audits re-read."""
        h = self.state.header
        return CallTimeline(
            **h.model_dump(),
            events=list(self._fed_events),
            utterances=sorted(self._fed_utterances, key=lambda u: (u.start, u.end)),
            emotion=list(self._fed_emotion),
            voice_activity=[v for v in self._fed_voice if v.end is not None],
            related_calls=self.state.related_calls,
        )

    # --- state updates --------------------------------------------------------------

    def _advance_clock(self, t: float) -> None:
        if t > self.state.now:
            self.state.now = t

    def _mark_speaking(self, speaker: str, start: float) -> None:
        if self.state.speaking_since[speaker] is None:
            self.state.speaking_since[speaker] = start

    def _mark_silent(self, speaker: str, end: float) -> None:
        since = self.state.speaking_since[speaker]
        if since is not None and since <= end:
            self.state.speaking_since[speaker] = None
        last = self.state.last_speech_end[speaker]
        self.state.last_speech_end[speaker] = end if last is None else max(last, end)

    def _on_voice(self, seg: VoiceSegment) -> None:
        if seg.end is None:
            self._mark_speaking(seg.speaker, seg.start)
            self._advance_clock(seg.start)
        else:
            self._fed_voice.append(seg)
            self._mark_silent(seg.speaker, seg.end)
            self._advance_clock(seg.end)

    def _on_utterance(self, utt: Utterance) -> list[Prompt]:
        st = self.state
        self._advance_clock(utt.end)
        self._mark_silent(utt.speaker, utt.end)
        rec = UtteranceRecord(
            index=self._next_index,
            speaker=utt.speaker,
            start=utt.start,
            end=utt.end,
            text=utt.text,
            norm=self.book.ctx.normalize(utt.text),
            level_db=utt.level_db,
        )
        self._next_index += 1
        st.utterances.append(rec)
        (st.agent if utt.speaker == "agent" else st.customer).append(rec)
        if utt.speaker == "agent" and st.negative_onsets:
            for name, matcher in self.book.ctx.recovery_steps:
                if name not in st.recovery.done and matcher.search(rec.norm):
                    st.recovery.done.add(name)
        onset = self._negative.on_utterance(rec, st)
        out: list[Prompt] = []
        for rule in self.book.rules:
            out += self._emit(rule, rule.on_utterance(rec, st, self._memory[rule.rule_id]))
        if onset is not None:
            out += self._on_negative(onset)
        return out

    def _on_event(self, event: CallEvent) -> list[Prompt]:
        st = self.state
        self._advance_clock(event.t)
        st.events.append(event)
        if event.type == "ringing":
            st.ringing.append(event)
        elif event.type == "answered":
            st.answered_at = event.t
        elif event.type == "hold":
            if st.hold_since is None:
                st.hold_since = event.t
        elif event.type == "resume":
            if st.hold_since is not None:
                st.holds.append((st.hold_since, event.t))
            st.hold_since = None
        elif event.type == "hangup":
            st.hangup = event
            if st.hold_since is not None:
                st.holds.append((st.hold_since, event.t))
                st.hold_since = None
        out: list[Prompt] = []
        for rule in self.book.rules:
            out += self._emit(rule, rule.on_event(event, st, self._memory[rule.rule_id]))
        if event.type == "transfer":
            # Set after the rules ran: transfer.hold_first judges the state the transfer found.
            st.last_transfer_at = event.t
        if event.type == "hangup" and not self.book.config.engine.prompt_after_hangup:
            self._prompts_closed = True
        return out

    def _on_emotion(self, sample: EmotionSample) -> list[Prompt]:
        st = self.state
        self._advance_clock(sample.t)
        st.emotion.append(sample)
        onset = self._negative.on_emotion(sample, st)
        out: list[Prompt] = []
        for rule in self.book.rules:
            out += self._emit(rule, rule.on_emotion(sample, st, self._memory[rule.rule_id]))
        if onset is not None:
            out += self._on_negative(onset)
        return out

    def _on_negative(self, onset: NegativeOnset) -> list[Prompt]:
        out: list[Prompt] = []
        for rule in self.book.rules:
            out += self._emit(rule, rule.on_negative(onset, self.state, self._memory[rule.rule_id]))
        return out

    # --- findings and prompts -------------------------------------------------------

    def _recovery_hint(self, rule: Rule) -> RecoveryHint | None:
        if not rule.settings.suggest_recovery:
            return None
        step = self.state.recovery.next_step()
        if step is None:
            return None
        suggestion = next(s.suggestion for s in self.book.ctx.recovery.steps if s.name == step)
        done = [n for n in self.state.recovery.step_names if n in self.state.recovery.done]
        return RecoveryHint(step=step, suggestion=suggestion, done=done)

    def _prompt_text(self, rule: Rule, det: Detection) -> str:
        values = _Template({"company": self.book.config.deployment.company_name, **det.values})
        return rule.settings.prompt.format_map(values)

    def _emit(self, rule: Rule, detections: Iterable[Detection]) -> list[Prompt]:
        out: list[Prompt] = []
        for det in detections:
            hint = self._recovery_hint(rule)
            self._recorded.append(_Recorded(rule, det, hint))
            if rule.settings.kind != "live" or self._prompts_closed:
                continue
            if rule.clears() and not rule.still_holds(det, self.state, self._memory[rule.rule_id]):
                continue  # over by the time it was judged (the words that ended a silence): nothing to prompt
            now = self.state.now
            last = self._last_prompt_at.get(rule.rule_id)
            if last is not None and now - last < self.book.config.cooldown_s(rule.rule_id):
                continue
            self._last_prompt_at[rule.rule_id] = now
            prompt = Prompt(
                rule_id=rule.rule_id,
                severity=rule.settings.severity,
                t=_r(det.t),
                emitted_at=_r(now),
                text=self._prompt_text(rule, det),
                detail=det.detail,
                evidence=list(det.evidence),
                recovery=hint,
                provisional=det.provisional,
            )
            if rule.clears():
                self._on_screen.append(_OnScreen(rule, det, len(self._prompts)))
            self._prompts.append(prompt)
            out.append(prompt)
        return out

    def _cleared(self) -> list[PromptCleared]:
        """After each step: the prompts whose condition stopped holding come off the screen. Nothing is cleared
        once prompts are closed (from the hang-up step on): the call is over for the agent."""
        if self._prompts_closed or not self._on_screen:
            return []
        out: list[PromptCleared] = []
        still: list[_OnScreen] = []
        for shown in self._on_screen:
            if shown.rule.still_holds(shown.detection, self.state, self._memory[shown.rule.rule_id]):
                still.append(shown)
                continue
            now = _r(self.state.now)
            prompt = self._prompts[shown.index].model_copy(update={"cleared_at": now})
            self._prompts[shown.index] = prompt
            out.append(PromptCleared(rule_id=prompt.rule_id, prompt_id=prompt.prompt_id, emitted_at=now))
        self._on_screen = still
        return out

    def _finding(self, rec: _Recorded) -> Finding:
        det, rule = rec.detection, rec.rule
        return Finding(
            rule_id=rule.rule_id,
            severity=rule.settings.severity,
            t=_r(det.t),
            end=None if det.end is None else _r(det.end),
            evidence=list(det.evidence),
            detail=det.detail,
            prompt=self._prompt_text(rule, det),
            seed=rule.settings.seed,
            recovery=rec.recovery,
        )


class _Template(dict):
    """str.format_map values; a placeholder the rule did not fill stays visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _r(x: float) -> float:
    return round(x, 2)


# --- post-call replay ---------------------------------------------------------------

# At equal times: an utterance ends before an event lands (so "hangup at the last word"
# sees the word), and new speech starts last.
_ORDER_UTTERANCE, _ORDER_VOICE_END, _ORDER_EVENT, _ORDER_EMOTION, _ORDER_VOICE_START = range(5)


def replay_items(timeline: CallTimeline) -> list[tuple[float, int, int, TimelineItem]]:
    """The timeline as the live pipeline would have fed it: each item when it became known."""
    items: list[tuple[float, int, int, TimelineItem]] = []
    seq = 0

    def add(t: float, order: int, item: TimelineItem) -> None:
        nonlocal seq
        items.append((t, order, seq, item))
        seq += 1

    for e in timeline.events:
        add(e.t, _ORDER_EVENT, e)
    for u in timeline.utterances:
        add(u.end, _ORDER_UTTERANCE, u)
    for s in timeline.emotion:
        add(s.t, _ORDER_EMOTION, s)
    # Speech starts are known live (voice activity, partials); a replay rebuilds them.
    segments = timeline.voice_activity or [VoiceSegment(speaker=u.speaker, start=u.start, end=u.end) for u in timeline.utterances]
    for v in segments:
        add(v.start, _ORDER_VOICE_START, VoiceSegment(speaker=v.speaker, start=v.start))
        if timeline.voice_activity and v.end is not None:
            add(v.end, _ORDER_VOICE_END, v)
    items.sort(key=lambda x: (x[0], x[1], x[2]))
    return items


class ReplayStopped(RuntimeError):
    """A replay was stopped before it finished: past its time budget, or nobody waits for it any more."""


# How many ticks or items a replay runs between two looks at `stop`: often enough to stop within a few
# milliseconds, seldom enough to cost nothing.
_STOP_EVERY = 256


def audit_timeline(timeline: CallTimeline, rules: RulesConfig | RuleBook,
                   stop: Callable[[], bool] | None = None) -> CallReport:
    """Post-call audit: replay a finished timeline through a fresh engine and report. `stop`, when given, is
    asked every few steps; once it says True the replay raises ReplayStopped."""
    engine = RulesEngine(rules, timeline.header(), related_calls=timeline.related_calls)
    tick = engine.book.config.engine.replay_tick_s
    items = replay_items(timeline)
    end = max([0.0] + [t for t, _, _, _ in items] + [e.t for e in timeline.events])
    if not math.isfinite(end) or end > MAX_CALL_TIME_S:
        # The models refuse such times; a timeline built around them (model_construct) must not spin forever.
        raise TimelineError(f"{timeline.call_id}: a time of {end:g} s is past the {MAX_CALL_TIME_S:g} s a call may last")
    steps = 0

    def step() -> None:
        nonlocal steps
        steps += 1
        if stop is not None and steps % _STOP_EVERY == 0 and stop():
            raise ReplayStopped(f"{timeline.call_id}: replay stopped at {engine.state.now:.1f} s of {end:.1f} s")

    next_tick = tick
    for t, _, _, item in items:
        while next_tick <= t:
            engine.advance(next_tick)
            next_tick += tick
            step()
        engine.feed(item)
        step()
    end = max(end, engine.state.now)
    while next_tick <= end:
        engine.advance(next_tick)
        next_tick += tick
        step()
    if not math.isclose(engine.state.now, end):
        engine.advance(end)
    return engine.finish()
