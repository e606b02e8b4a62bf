"""The engine live: prompts on the step that completes the evidence, ticks, cool-down, hang-up."""

from __future__ import annotations

from callscript import CLOSE, OPEN, rulebook, script_timeline

from rules.engine import RulesEngine, audit_timeline, replay_items
from rules.timeline import CallEvent, CallHeader, EmotionSample, Utterance, VoiceSegment

HEADER = CallHeader(call_id="live-1", direction="inbound", started_at="2024-05-13T10:00:00")


def engine() -> RulesEngine:
    return RulesEngine(rulebook(), HEADER)


def agent(start: float, end: float, text: str) -> Utterance:
    return Utterance(speaker="agent", start=start, end=end, text=text)


def customer(start: float, end: float, text: str, partial: bool = False) -> Utterance:
    return Utterance(speaker="customer", start=start, end=end, text=text, partial=partial)


def test_prompt_on_the_step_of_the_utterance() -> None:
    e = engine()
    assert e.feed(CallEvent(type="ringing", t=0)) == []
    assert e.feed(CallEvent(type="answered", t=4)) == []
    prompts = e.feed(agent(4.5, 5.0, "喂？"))
    assert [p.rule_id for p in prompts] == ["opening.bare_wei"]
    p = prompts[0]
    assert p.severity == "warn" and p.t == 4.5 and p.emitted_at == 5.0
    assert "您好" in p.text and "顺丰快递" in p.text
    assert p.evidence[0].text == "喂？"


def test_answer_rings_prompts_on_answered_event() -> None:
    e = engine()
    e.feed(CallEvent(type="ringing", t=0))
    prompts = e.feed(CallEvent(type="answered", t=24))
    assert [p.rule_id for p in prompts] == ["answer.rings"]


def test_dead_air_fires_on_a_tick() -> None:
    e = engine()
    e.feed(CallEvent(type="answered", t=0))
    e.feed(agent(0.5, 3.0, "您好，顺丰快递，请问有什么可以帮您？"))
    fired_at = None
    t = 3.0
    while t < 20 and fired_at is None:
        t += 0.5
        if any(p.rule_id == "listen.dead_air" for p in e.advance(t)):
            fired_at = t
    assert fired_at == 13.5  # first tick more than 10 s after the last word


def test_no_silence_fires_during_a_partial() -> None:
    e = engine()
    e.feed(CallEvent(type="answered", t=0))
    e.feed(agent(0.5, 3.0, "您好，顺丰快递，请问有什么可以帮您？"))
    e.feed(customer(3.5, 10.0, "我跟你说", partial=True))
    hits = []
    for k in range(1, 50):
        now = 10.0 + k * 0.5
        e.feed(customer(3.5, now, "我跟你说……", partial=True))
        hits += [(now, p) for p in e.advance(now) if p.rule_id == "listen.no_silence"]
    assert hits and hits[0][0] == 24.0  # 3.5 + 20 s, on the next tick


def test_voice_segments_mark_speech() -> None:
    e = engine()
    e.feed(CallEvent(type="answered", t=0))
    e.feed(VoiceSegment(speaker="customer", start=1.0))
    assert not [p for t in range(2, 14) for p in e.advance(float(t)) if p.rule_id == "listen.dead_air"]


def test_cooldown_suppresses_repeat_prompts_but_keeps_findings() -> None:
    e = engine()
    e.feed(CallEvent(type="answered", t=0))
    first = e.feed(agent(1, 3, "我保证明天到。"))
    second = e.feed(agent(4, 6, "百分之百没问题。"))
    assert [p.rule_id for p in first] == ["promise.rash"]
    assert second == []
    e.feed(CallEvent(type="hangup", t=8, by="customer"))
    report = e.finish()
    assert len([f for f in report.findings if f.rule_id == "promise.rash"]) == 2


def test_post_rules_never_prompt() -> None:
    e = engine()
    e.feed(CallEvent(type="answered", t=0))
    e.feed(agent(0.5, 3, "您好，顺丰快递，请问有什么可以帮您？"))
    assert e.feed(CallEvent(type="transfer", t=4)) == []
    assert any(f.rule_id == "transfer.hold_first" for f in e.finish().findings)


def test_complaint_prompt_offers_the_next_recovery_step() -> None:
    e = engine()
    e.feed(CallEvent(type="answered", t=0))
    e.feed(agent(0.5, 3, "您好，顺丰快递，请问有什么可以帮您？"))
    e.feed(customer(3.5, 8, "你们这是什么服务！"))
    e.feed(EmotionSample(t=8, valence=-0.8, label="angry"))
    prompts = [p for t in range(9, 30) for p in e.advance(float(t))]
    (p,) = [p for p in prompts if p.rule_id == "complaint.empathy_first"]
    assert p.emitted_at == 24.0  # 15 s after the customer stopped
    assert p.recovery is not None and p.recovery.step == "感受" and p.recovery.suggestion
    # Once the agent has empathised and apologised, the next step moves on.
    e.feed(agent(25, 29, "非常理解您的心情，真的很抱歉给您添麻烦了。"))
    argue = e.feed(agent(30, 32, "不是这样的。"))
    assert argue[0].recovery is not None and argue[0].recovery.step == "解决"


def test_goodbye_reminder_before_hangup_and_finding_after() -> None:
    e = engine()
    e.feed(CallEvent(type="answered", t=0))
    e.feed(agent(0.5, 3, "您好，顺丰快递，请问有什么可以帮您？"))
    e.feed(customer(4, 6, "好的，没有了，再见。"))
    reminders = [p for t in (7.0, 8.0, 10.5, 11.0) for p in e.advance(t) if p.rule_id == "closing.goodbye"]
    assert len(reminders) == 1 and reminders[0].provisional
    assert e.feed(CallEvent(type="hangup", t=12, by="customer")) == []
    assert e.advance(13) == []  # nothing reaches the agent after the hang-up
    report = e.finish()
    assert [f.rule_id for f in report.findings].count("closing.goodbye") == 1


def test_agent_hangup_prompts_on_the_hangup_step_only() -> None:
    e = engine()
    e.feed(CallEvent(type="answered", t=0))
    e.feed(agent(0.5, 3, "您好，顺丰快递，请问有什么可以帮您？"))
    prompts = e.feed(CallEvent(type="hangup", t=5, by="agent"))
    assert [p.rule_id for p in prompts] == ["closing.caller_hangs_up_first"]


def test_live_feed_and_replay_agree() -> None:
    timeline = script_timeline(OPEN + "A 我看一下。\nA +14 查到了，明天百分之百送到。\nC 你们这什么服务。" + CLOSE)
    replayed = audit_timeline(timeline, rulebook())
    e = RulesEngine(rulebook(), timeline.header())
    t = 0.0
    for when, _, _, item in replay_items(timeline):
        while t + 0.5 <= when:
            t += 0.5
            e.advance(t)
        e.feed(item)
    e.advance(timeline.events[-1].t)
    live = e.finish()
    assert [(f.rule_id, f.t) for f in live.findings] == [(f.rule_id, f.t) for f in replayed.findings]


def test_stored_timeline_reaudits_the_same() -> None:
    timeline = script_timeline(OPEN + "A 我看一下。\nA +14 查到了，明天百分之百送到。" + CLOSE)
    e = RulesEngine(rulebook(), timeline.header())
    for _, _, _, item in replay_items(timeline):
        e.feed(item)
    stored = e.timeline()
    assert stored.utterances == timeline.utterances and stored.events == timeline.events
    a = audit_timeline(stored, rulebook())
    b = audit_timeline(timeline, rulebook())
    assert a.findings == b.findings and a.score == b.score


def test_finish_is_idempotent_and_feed_after_finish_fails() -> None:
    e = engine()
    e.feed(CallEvent(type="answered", t=0))
    r1 = e.finish()
    assert e.finish() is r1
    try:
        e.feed(agent(1, 2, "您好"))
    except RuntimeError:
        pass
    else:
        raise AssertionError("feeding a finished engine must fail")
