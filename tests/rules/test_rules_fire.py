"""Every rule id: a call where it must fire (at the marked line, with evidence) and a near miss.

Scripts use the format of tests/data/timelines/build_timelines.py; ``#! rule`` marks the
line where a QA reviewer expects the finding (``@gap``: at the end of the line before).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rules.catalog import RULE_IDS

from callscript import CLOSE, OPEN, audit, build_timelines, rulebook, script_timeline, times
from rules.engine import audit_timeline


@dataclass
class Case:
    name: str
    rule_id: str
    script: str
    rules_yaml: str = ""
    direction: str = "inbound"
    started_at: str = "2024-05-13T10:00:00"
    related: str | None = None


def expected_times(case: Case) -> list[float]:
    lines = [f"direction: {case.direction}", f"started_at: {case.started_at}", "deployment: test"]
    data = build_timelines.build_call("x", lines + case.script.strip("\n").splitlines())
    return [e["t"] for e in data["expected"] if e["rule_id"] == case.rule_id]


CASES = [
    # ---- A. answering and opening ----
    Case("rings: five ring events", "answer.rings", "ring 0\nring 5\nring 10\nring 15\nring 20\nanswered 22 #! answer.rings\nA +0.5 您好，顺丰快递，请问有什么可以帮您？" + CLOSE),
    Case("rings: 21 s at 5 s a ring", "answer.rings", "ring 0\nanswered 21 #! answer.rings\nA +0.5 您好，顺丰快递，请问有什么可以帮您？" + CLOSE),
    Case("rings near miss: three rings", "answer.rings", "ring 0\nanswered 12\nA +0.5 您好，顺丰快递，请问有什么可以帮您？" + CLOSE),
    Case("rings near miss: explicit count 3", "answer.rings", "ring 0\nanswered 14 count=3\nA +0.5 您好，顺丰快递，请问有什么可以帮您？" + CLOSE),
    Case("bare wei", "opening.bare_wei", "ring 0\nanswered 5\nA +0.5 喂？ #! opening.bare_wei\nC 喂，你好，我查快递。" + CLOSE),
    Case("bare wei, traditional 餵餵", "opening.bare_wei", "ring 0\nanswered 5\nA +0.5 餵餵，哪位 #! opening.bare_wei\nC 我查快递。" + CLOSE),
    Case("wei near miss: 喂 after 您好", "opening.bare_wei", "ring 0\nanswered 5\nA +0.5 您好，顺丰快递，喂？听得到吗？\nC 听得到。" + CLOSE),
    Case("wei near miss: 喂您好 carries a greeting", "opening.bare_wei", "ring 0\nanswered 5\nA +0.5 喂，您好，顺丰快递\nC 你好。" + CLOSE),
    Case("greeting without company", "opening.greeting", "ring 0\nanswered 5\nA +0.5 您好，请问有什么可以帮您？ #! opening.greeting\nC 查快递。" + CLOSE),
    Case("greeting without 您好", "opening.greeting", "ring 0\nanswered 5\nA +0.5 顺丰快递，请讲。 #! opening.greeting\nC 查快递。" + CLOSE),
    Case("greeting near miss: ASR 顺风快递", "opening.greeting", "ring 0\nanswered 5\nA +0.5 你好，顺风快递，请问有什么可以帮你？\nC 查快递。" + CLOSE),
    Case("greeting near miss: company in second sentence", "opening.greeting", "ring 0\nanswered 5\nA +0.5 您好。\nA +0.3 这里是顺丰快递客服，请问有什么可以帮您？\nC 查快递。" + CLOSE),
    Case("outbound at 12:30", "outbound.hours", "ring 0\nanswered 5 #! outbound.hours@gap\nA +0.5 您好，请问是李女士吗？我是顺丰快递的小王，给您打电话是确认一下您的地址。" + CLOSE, direction="outbound", started_at="2024-05-13T12:30:00"),
    Case("outbound at 20:30", "outbound.hours", "ring 0\nanswered 5 #! outbound.hours@gap\nA +0.5 您好，请问是李女士吗？我是顺丰快递的小王，给您打电话是确认一下您的地址。" + CLOSE, direction="outbound", started_at="2024-05-13T20:30:00"),
    Case("outbound near miss: 19:59", "outbound.hours", "ring 0\nanswered 5\nA +0.5 您好，请问是李女士吗？我是顺丰快递的小王，给您打电话是确认一下您的地址。" + CLOSE, direction="outbound", started_at="2024-05-13T19:59:00"),
    Case("outbound near miss: inbound at night", "outbound.hours", OPEN + CLOSE, started_at="2024-05-13T23:30:00"),
    Case("self intro missing purpose and identity", "outbound.self_intro", "ring 0\nanswered 5\nA +0.5 喂，是李女士吗？ #! outbound.self_intro\nC 是我。\nA 你那个地址要改一下。" + CLOSE, direction="outbound"),
    Case("self intro near miss", "outbound.self_intro", "ring 0\nanswered 5\nA +0.5 您好，请问是李女士吗？\nC 是我。\nA 李女士您好，我是顺丰快递的小王，给您打电话是想跟您确认一下收件地址。" + CLOSE, direction="outbound"),
    # ---- B. during the call ----
    Case("customer talks 25 s unanswered", "listen.no_silence", OPEN + "A 好的。\nC /25 我跟你说我上个月寄的那个件到现在都没有消息我问了好几次都说在查我真的不知道你们在干什么这个件很重要的里面是合同 #! listen.no_silence" + CLOSE),
    Case("silence near miss: backchannel inside", "listen.no_silence", OPEN + "A 好的。\nC /25 我跟你说我上个月寄的那个件到现在都没有消息我问了好几次都说在查我真的不知道你们在干什么这个件很重要的里面是合同\nA -12 /0.5 嗯" + CLOSE),
    Case("dead air 15 s", "listen.dead_air", OPEN + "A 好的我查一下。\nA +15 查到了，明天送达。 #! listen.dead_air@gap" + CLOSE),
    Case("dead air near miss: 8 s pause", "listen.dead_air", OPEN + "A 好的我查一下。\nA +8 查到了，明天送达。" + CLOSE),
    Case("dead air near miss: long hold", "listen.dead_air", OPEN + "A 好的请您稍等。\nhold +0.5\nresume +60\nA +0.5 让您久等了，查到了，明天送达。" + CLOSE),
    Case("agent talks over customer", "listen.no_interrupt", OPEN + "C /6 我想问一下这个件为什么一直显示在转运中心没有动\nA -3 /3.5 这个是因为天气原因延误了。 #! listen.no_interrupt" + CLOSE),
    Case("interrupt near miss: backchannel overlap", "listen.no_interrupt", OPEN + "C /6 我想问一下这个件为什么一直显示在转运中心没有动\nA -3 /1.5 嗯嗯，好的" + CLOSE),
    Case("interrupt near miss: short overlap at turn end", "listen.no_interrupt", OPEN + "C /6 我想问一下这个件为什么一直显示在转运中心没有动\nA -0.6 /3.5 这个是因为天气原因延误了。" + CLOSE),
    Case("hold 45 s, no apology", "hold.apology", OPEN + "A 请您稍等。\nhold +0.5\nresume +45\nA +0.5 查到了，明天送达。 #! hold.apology" + CLOSE),
    Case("hold near miss: 20 s", "hold.apology", OPEN + "A 请您稍等。\nhold +0.5\nresume +20\nA +0.5 查到了，明天送达。" + CLOSE),
    Case("hold near miss: apologised", "hold.apology", OPEN + "A 请您稍等。\nhold +0.5\nresume +45\nA +0.5 不好意思让您久等了，查到了，明天送达。" + CLOSE),
    Case("transfer without hold", "transfer.hold_first", OPEN + "A 我帮您转到理赔组。\ntransfer +0.5 #! transfer.hold_first"),
    Case("transfer near miss: held first", "transfer.hold_first", OPEN + "A 我帮您转到理赔组，请稍等。\nhold +0.5\ntransfer +5"),
    Case("fast agent", "speech.rate", OPEN + "A /4 好的这个件现在在杭州转运中心今天晚上发出明天上午到达您所在的城市 #! speech.rate\nA /4 下午之前派送到您手上派送前快递员会给您打电话请您保持电话畅通" + CLOSE),
    Case("rate near miss: normal pace", "speech.rate", OPEN + "A /8 好的这个件现在在杭州转运中心今天晚上发出明天上午到达您所在的城市\nA /8 下午之前派送到您手上派送前快递员会给您打电话请您保持电话畅通" + CLOSE),
    Case("agent shouts once", "speech.volume", OPEN.replace("A +0.5", "A +0.5 {db=-20}").replace("A 好的", "A {db=-21} 好的") + "A {db=-19} 查到了。\nA {db=-6} 我说查到了！ #! speech.volume\nA {db=-20} 明天送。\nA {db=-20} 感谢您的来电，再见。\nhangup +1 customer"),
    Case("volume near miss: steady", "speech.volume", OPEN.replace("A +0.5", "A +0.5 {db=-20}").replace("A 好的", "A {db=-21} 好的") + "A {db=-19} 查到了。\nA {db=-14} 我说查到了！\nA {db=-20} 明天送。\nA {db=-20} 感谢您的来电，再见。\nhangup +1 customer"),
    Case("plain 你 throughout, no 请", "language.polite", "ring 0\nanswered 5\nA +0.5 顺丰快递。\nC 我查快递。\nA 你单号多少？ #! language.polite\nC SF123。\nA 你这个件明天到，你等着吧。\nC 好。\nA 行了，你还有事没？\nC 没了。\nA 再见。\nhangup +1 customer"),
    Case("polite near miss: 您 with one ASR 你", "language.polite", OPEN + "A 好的，你的件明天到，请您保持电话畅通。" + CLOSE),
    Case("rash promise", "promise.rash", OPEN + "A 您放心，明天百分之百送到。 #! promise.rash" + CLOSE),
    Case("rash promise: 我保证", "promise.rash", OPEN + "A 这个我保证给您解决。 #! promise.rash" + CLOSE),
    Case("promise near miss: cannot guarantee", "promise.rash", OPEN + "A 这个我不能跟您保证明天一定送到，我会尽力帮您催促。" + CLOSE),
    Case("blames wrong-number caller", "wrong_number.no_blame", "ring 0\nanswered 5\nA +0.5 您好，顺丰快递，请问有什么可以帮您？\nC 是修空调的吗？\nA 不是。\nC 哦，打错了。\nA 你看清楚再打，浪费时间。 #! wrong_number.no_blame\nhangup +1 customer"),
    Case("wrong number near miss", "wrong_number.no_blame", "ring 0\nanswered 5\nA +0.5 您好，顺丰快递，请问有什么可以帮您？\nC 是修空调的吗？\nA 您好，这里是顺丰快递，您可能拨错号码了。\nC 哦，打错了，不好意思。\nA 没关系，再见。\nhangup +1 customer"),
    Case("no intake at all", "intake.confirm", "ring 0\nanswered 5\nA +0.5 您好，顺丰快递。 #! intake.confirm\nC 改地址。\nA 好的。\nC 改到和平路。\nA 好的改好了。" + CLOSE),
    Case("intake near miss", "intake.confirm", OPEN + CLOSE),
    # ---- C. complaints ----
    Case("no empathy after an outburst", "complaint.empathy_first", OPEN + "C 你们这是什么服务，我都打了三次电话了！ #! complaint.empathy_first\nA 单号报一下。\nC 刚才报过了！\nA 系统显示在派送。\nC +12 那什么时候到？" + CLOSE),
    Case("empathy near miss", "complaint.empathy_first", OPEN + "C 你们这是什么服务，我都打了三次电话了！\nA 非常理解您的心情，给您添麻烦了。" + CLOSE),
    Case("empathy from emotion only", "complaint.empathy_first", OPEN + "C 这个件怎么还没到。 #! complaint.empathy_first\n~ -0.8 angry\nA 单号报一下。\nC +15 好吧。" + CLOSE),
    Case("apology on behalf of the company", "complaint.apology_wording", OPEN + "A 我代表公司向您道歉。 #! complaint.apology_wording" + CLOSE),
    Case("apology then 但是", "complaint.apology_wording", OPEN + "A 非常抱歉，但是这是系统的问题。 #! complaint.apology_wording" + CLOSE),
    Case("apology near miss", "complaint.apology_wording", OPEN + "A 非常抱歉给您添麻烦了，我马上帮您处理。" + CLOSE),
    Case("arguing", "complaint.no_argue", OPEN + "A 不是这样的，你听我说。 #! complaint.no_argue" + CLOSE),
    Case("argue near miss", "complaint.no_argue", OPEN + "A 如果不是这样的话，我们再帮您查。" + CLOSE),
    Case("deflecting", "complaint.own_it", OPEN + "A 这事我也做不了主，您去找网点吧。 #! complaint.own_it" + CLOSE),
    Case("own it near miss", "complaint.own_it", OPEN + "A 这件事由我来跟进，处理好后第一时间联系您。" + CLOSE),
    Case("no resolution after complaint", "complaint.resolution_path", OPEN + "C 我要投诉，你们太慢了！ #! complaint.resolution_path\nA 非常抱歉给您添麻烦了。\nC 那怎么办？\nA 您再等等吧。" + CLOSE),
    Case("resolution near miss", "complaint.resolution_path", OPEN + "C 我要投诉，你们太慢了！\nA 非常抱歉给您添麻烦了，我马上给您加急，两个小时内给您回电。" + CLOSE),
    Case("no follow-up channel", "complaint.follow_up", OPEN + "C 我要投诉，你们太慢了！\nA 非常抱歉给您添麻烦了，我给您加急。\nA 好的，还有其他可以帮您的吗？\nC 没有了。\nA 感谢您的来电，再见。 #! complaint.follow_up\nhangup +1.5 customer"),
    Case("follow-up near miss: staff number", "complaint.follow_up", OPEN + "C 我要投诉，你们太慢了！\nA 非常抱歉给您添麻烦了，我给您加急，我的工号是3021，有问题直接找我。" + CLOSE),
    Case("customer leaves angry", "complaint.recovered", OPEN + "C 你们这是什么服务！ #! complaint.recovered\n~ -0.8 angry\nA 非常抱歉，我马上处理，工号3021。\nC 算了，我还是要投诉。\n~ -0.7 angry" + CLOSE.replace("C 没有了，谢谢。", "C 没有了。\n~ -0.75 angry")),
    Case("recovered near miss", "complaint.recovered", OPEN + "C 你们这是什么服务！\n~ -0.8 angry\nA 非常抱歉，我马上处理，工号3021。\nC 好吧，那就这样。\n~ 0.1 neutral" + CLOSE),
    # ---- D. closing ----
    Case("no thanks at the end", "closing.summary_thanks", OPEN + "A 明天送到。\nC 好的。\nA 好的，再见。 #! closing.summary_thanks\nhangup +1.5 customer"),
    Case("thanks near miss", "closing.summary_thanks", OPEN + CLOSE),
    Case("no goodbye", "closing.goodbye", OPEN + "A 明天送到，感谢您的来电。 #! closing.goodbye\nhangup +1.5 customer"),
    Case("goodbye near miss: 祝您生活愉快", "closing.goodbye", OPEN + "A 明天送到，感谢您的来电，祝您生活愉快。\nhangup +1.5 customer"),
    Case("agent hangs up first", "closing.caller_hangs_up_first", OPEN + "A 感谢您的来电，再见。\nhangup +0.5 agent #! closing.caller_hangs_up_first"),
    Case("hang-up near miss", "closing.caller_hangs_up_first", OPEN + CLOSE),
    Case("dropped and not called back", "closing.redial_dropped", OPEN + "A 好的我查一下这个\nhangup +0.3 system #! closing.redial_dropped", related="[]"),
    Case("redial near miss: called back", "closing.redial_dropped", OPEN + "A 好的我查一下这个\nhangup +0.3 system", related='[{"direction": "outbound", "started_at": "2024-05-13T10:02:00"}]'),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    timeline = script_timeline(case.script, direction=case.direction, started_at=case.started_at, related=case.related)
    report = audit_timeline(timeline, rulebook(case.rules_yaml))
    want = expected_times(case)
    got = times(report, case.rule_id)
    assert len(got) == len(want), f"{case.rule_id}: expected at {want}, got {got}: {[f.detail for f in report.findings]}"
    for g, w in zip(sorted(got), sorted(want)):
        assert abs(g - w) <= 1.0, f"{case.rule_id}: expected near {w}, got {g}"
    for f in report.findings:
        if f.rule_id == case.rule_id:
            assert f.evidence, "a finding carries its evidence"
            assert f.seed and f.prompt and f.detail


def test_every_rule_has_a_firing_case_and_a_near_miss() -> None:
    fires = {c.rule_id for c in CASES if expected_times(c)}
    misses = {c.rule_id for c in CASES if not expected_times(c)}
    assert fires == set(RULE_IDS)
    assert misses == set(RULE_IDS)


def test_evidence_names_the_utterance() -> None:
    report = audit(OPEN + "A 您放心，明天百分之百送到。" + CLOSE)
    (f,) = [f for f in report.findings if f.rule_id == "promise.rash"]
    assert f.evidence[0].kind == "utterance"
    assert f.evidence[0].speaker == "agent"
    assert "百分之百" in (f.evidence[0].text or "")
    assert f.seed.startswith("001:")


def test_event_evidence() -> None:
    report = audit("ring 0\nanswered 26\nA +0.5 您好，顺丰快递，请问有什么可以帮您？" + CLOSE)
    (f,) = [f for f in report.findings if f.rule_id == "answer.rings"]
    assert f.t == 26.0
    assert [e.event for e in f.evidence] == ["ringing", "answered"]
    assert "6" in f.prompt  # rings filled into the prompt text


def test_disabled_rule_does_not_fire() -> None:
    report = audit(OPEN + "A 您放心，明天百分之百送到。" + CLOSE, "rules:\n  promise.rash:\n    enabled: false\n")
    assert not times(report, "promise.rash")


def test_threshold_override_changes_the_judgement() -> None:
    script = OPEN + "A 请您稍等。\nhold +0.5\nresume +20\nA +0.5 查到了，明天送达。" + CLOSE
    assert not times(audit(script), "hold.apology")
    assert times(audit(script, "rules:\n  hold.apology:\n    options:\n      max_hold_s: 15\n"), "hold.apology")


def test_department_and_staff_number_when_required() -> None:
    rules = "  department: 客服中心\nrules:\n  opening.greeting:\n    options:\n      require_department: true\n      require_staff_number: true\n"
    bad = audit("ring 0\nanswered 5\nA +0.5 您好，顺丰快递，请问有什么可以帮您？" + CLOSE, rules)
    (f,) = [f for f in bad.findings if f.rule_id == "opening.greeting"]
    assert "部门" in f.detail and "工号" in f.detail
    good = audit("ring 0\nanswered 5\nA +0.5 您好，顺丰快递客服中心，工号3021为您服务。" + CLOSE, rules)
    assert not times(good, "opening.greeting")
