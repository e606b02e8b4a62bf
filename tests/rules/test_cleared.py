"""Prompts that clear: raised while a condition holds, taken off the agent's screen once it stops holding.

The finding stays in the report either way; a one-off prompt (what was said cannot be unsaid) never clears.
"""

from __future__ import annotations

from pathlib import Path

from callscript import CLOSE, OPEN, rulebook, script_timeline

from rules.catalog import RULE_CLASSES
from rules.engine import RulesEngine, audit_timeline, replay_items
from rules.findings import LiveMessage, Prompt, PromptCleared
from rules.timeline import CallEvent, CallHeader, EmotionSample, Utterance, VoiceSegment

HEADER = CallHeader(call_id="clear-1", direction="inbound", started_at="2024-05-13T10:00:00")
GREETING = "您好，顺丰快递，请问有什么可以帮您？"

DOCS = Path(__file__).resolve().parents[2] / "docs"


def engine() -> RulesEngine:
    e = RulesEngine(rulebook(), HEADER)
    e.feed(CallEvent(type="answered", t=0))
    e.feed(agent(0.5, 3.0, GREETING))
    return e


def agent(start: float, end: float, text: str) -> Utterance:
    return Utterance(speaker="agent", start=start, end=end, text=text)


def customer(start: float, end: float, text: str, partial: bool = False) -> Utterance:
    return Utterance(speaker="customer", start=start, end=end, text=text, partial=partial)


def ticks(e: RulesEngine, start: float, stop: float) -> list[LiveMessage]:
    """Clock ticks every 0.5 s from `start` to `stop`, both included."""
    out: list[LiveMessage] = []
    t = start
    while t <= stop:
        out += e.advance(t)
        t += 0.5
    return out


def raised(messages: list[LiveMessage], rule_id: str) -> Prompt:
    (prompt,) = [m for m in messages if isinstance(m, Prompt) and m.rule_id == rule_id]
    return prompt


def cleared(messages: list[LiveMessage]) -> list[str]:
    return [m.prompt_id for m in messages if isinstance(m, PromptCleared)]


def test_exactly_the_documented_rules_clear() -> None:
    """docs/rules.md's table says on what each rule's prompt clears: `never` (a one-off), `—` (a post rule)."""
    rows = [line.split("|") for line in (DOCS / "rules.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| [`")]
    documented = {row[1].split("`")[1] for row in rows if row[-2].strip() not in ("never", "—")}
    assert {cls.rule_id for cls in RULE_CLASSES if cls.clears()} == documented


def test_dead_air_clears_the_moment_someone_speaks_and_its_finding_stays() -> None:
    e = engine()
    prompt = raised(ticks(e, 3.5, 14.0), "listen.dead_air")
    assert ticks(e, 14.5, 17.0) == []  # the silence goes on: the prompt stays
    assert e.feed(VoiceSegment(speaker="customer", start=17.2)) == [
        PromptCleared(rule_id="listen.dead_air", prompt_id=prompt.prompt_id, emitted_at=17.2)
    ]
    assert cleared(e.feed(customer(17.2, 19.0, "喂，还在吗？")) + ticks(e, 19.5, 21.0)) == []  # once only
    e.feed(CallEvent(type="hangup", t=22, by="customer"))
    report = e.finish()
    (finding,) = [f for f in report.findings if f.rule_id == "listen.dead_air"]
    assert (finding.t, finding.end) == (3.0, 17.2)
    (shown,) = [p for p in report.prompts if p.rule_id == "listen.dead_air"]
    assert shown.prompt_id == prompt.prompt_id and shown.cleared_at == 17.2


def test_dead_air_clears_when_the_agent_puts_the_caller_on_hold() -> None:
    e = engine()
    prompt = raised(ticks(e, 3.5, 14.0), "listen.dead_air")
    assert cleared(e.feed(CallEvent(type="hold", t=14.2))) == [prompt.prompt_id]


def test_no_silence_clears_on_the_agents_backchannel() -> None:
    e = engine()
    e.feed(VoiceSegment(speaker="customer", start=3.5))
    prompt = raised(ticks(e, 3.5, 24.0), "listen.no_silence")
    assert ticks(e, 24.5, 26.0) == []  # the customer talks on, the agent still says nothing
    assert cleared(e.feed(VoiceSegment(speaker="agent", start=26.2))) == [prompt.prompt_id]


def test_hold_apology_clears_when_the_agent_apologises_late() -> None:
    e = engine()
    e.feed(CallEvent(type="hold", t=4))
    e.feed(CallEvent(type="resume", t=50))
    prompt = raised(e.feed(agent(50.5, 52.0, "查到了，明天送达。")), "hold.apology")
    assert cleared(e.feed(agent(52.5, 53.5, "您的地址没有变吧？"))) == []
    assert cleared(e.feed(agent(54.0, 56.0, "不好意思，让您久等了。"))) == [prompt.prompt_id]


def test_empathy_first_clears_on_late_empathy() -> None:
    e = engine()
    e.feed(customer(3.5, 8, "你们这是什么服务！"))
    e.feed(EmotionSample(t=8, valence=-0.8, label="angry"))
    prompt = raised(ticks(e, 8.5, 24.0), "complaint.empathy_first")
    assert prompt.prompt_id not in cleared(e.feed(agent(25, 27, "单号报一下。")))  # (which ends the dead air)
    assert cleared(e.feed(agent(28, 31, "真的很抱歉，给您添麻烦了。"))) == [prompt.prompt_id]
    assert "complaint.empathy_first" in {f.rule_id for f in e.finish().findings}


def test_speech_rate_clears_once_the_agent_slows_down() -> None:
    e = engine()
    fast = "好的这个件现在在杭州转运中心今天晚上发出明天上午到达您所在的城市"  # 32 characters
    e.feed(agent(4, 8, fast))
    prompt = raised(e.feed(agent(8.5, 12.5, fast)), "speech.rate")
    assert cleared(e.feed(agent(13, 19, fast))) == []  # 6.4 characters a second: no longer fast, not yet calm
    assert cleared(e.feed(agent(20, 28, fast))) == [prompt.prompt_id]


def test_goodbye_reminder_clears_on_goodbye_even_when_the_words_were_said_before_it() -> None:
    e = engine()
    e.feed(customer(4, 6, "没有了，谢谢。"))
    prompt = raised(ticks(e, 6.5, 10.0), "closing.goodbye")
    # The agent's 再见 ended as the reminder went out; the recogniser returns it a moment later.
    assert cleared(e.feed(agent(8.8, 9.9, "不客气，再见。"))) == [prompt.prompt_id]


def test_a_one_off_prompt_never_clears() -> None:
    e = RulesEngine(rulebook(), HEADER)
    e.feed(CallEvent(type="answered", t=0))
    raised(e.feed(agent(0.5, 1.0, "喂？")), "opening.bare_wei")
    later = e.feed(agent(1.5, 4.0, GREETING)) + e.feed(customer(4.5, 6, "我查快递。")) + ticks(e, 6.5, 9.0)
    assert cleared(later) == []
    e.feed(CallEvent(type="hangup", t=10, by="customer"))
    (shown,) = [p for p in e.finish().prompts if p.rule_id == "opening.bare_wei"]
    assert shown.cleared_at is None


def test_nothing_clears_after_the_hang_up() -> None:
    e = engine()
    raised(ticks(e, 3.5, 14.0), "listen.dead_air")
    assert e.feed(CallEvent(type="hangup", t=15, by="customer")) == []
    assert e.feed(VoiceSegment(speaker="agent", start=15.5)) == []
    (shown,) = [p for p in e.finish().prompts if p.rule_id == "listen.dead_air"]
    assert shown.cleared_at is None


def test_a_silence_over_before_it_was_judged_is_a_finding_only() -> None:
    # Without clock ticks the gap is seen only when the next words arrive: they ended it, so nothing is prompted.
    e = engine()
    assert e.feed(agent(15, 17, "查到了，明天送达。")) == []
    assert "listen.dead_air" in {f.rule_id for f in e.finish().findings}


def test_the_replay_raises_and_clears_what_the_live_engine_did() -> None:
    timeline = script_timeline(
        OPEN + "A 好的我查一下。\nA +15 查到了，明天送达。\nA 请您稍等。\nhold +0.5\nresume +45\nA +0.5 地址没变吧？\n"
        "A +1 不好意思，让您久等了。" + CLOSE
    )
    e = RulesEngine(rulebook(), timeline.header())
    live: list[LiveMessage] = []
    t = 0.0
    for when, _, _, item in replay_items(timeline):
        while t + 0.5 <= when:
            t += 0.5
            live += e.advance(t)
        live += e.feed(item)
    assert sorted(cleared(live)) == sorted(p.prompt_id for p in e.prompts if p.rule_id in ("listen.dead_air", "hold.apology"))
    replayed = audit_timeline(timeline, rulebook())
    assert [(p.prompt_id, p.cleared_at) for p in replayed.prompts] == [(p.prompt_id, p.cleared_at) for p in e.prompts]
