"""The scorecard and the figures."""

from callscript import CLOSE, OPEN, audit

from rules.config import load_rules_config
from rules.findings import Finding
from rules.score import score_findings


def _finding(rule_id: str) -> Finding:
    return Finding(rule_id=rule_id, severity="warn", t=1.0, evidence=[], detail="", prompt="", seed="")


def test_score_weights_and_caps() -> None:
    config = load_rules_config()
    argue = config.rule("complaint.no_argue")
    score, deductions = score_findings([_finding("complaint.no_argue")] * 5 + [_finding("complaint.recovered")], config)
    (d,) = deductions  # complaint.recovered weighs nothing
    assert d.rule_id == "complaint.no_argue" and d.findings == 5
    assert d.points == min(argue.cap, 5 * argue.weight) == argue.cap
    assert score == 100 - argue.cap


def test_score_from_the_rules_file() -> None:
    from rules.config import load_rules_config_text

    config = load_rules_config_text("rules:\n  promise.rash:\n    weight: 30\n    cap: 40\n")
    score, _ = score_findings([_finding("promise.rash")] * 2, config)
    assert score == 60


def test_clean_call_scores_100_and_figures() -> None:
    report = audit(OPEN + "A 查到了，明天送到。\nC 好的。" + CLOSE)
    assert report.findings == [] and report.score == 100
    fig = report.figures
    assert fig.ring_count == 2  # answered at 5 s: the second ring had begun
    assert 0 < fig.talk_ratio < 1
    assert fig.agent_speech_rate and 2 < fig.agent_speech_rate < 7
    assert fig.longest_dead_air.seconds < 2
    assert fig.complaint_recovered.complaint is False


def test_recovery_figure() -> None:
    report = audit(OPEN + "C 你们这什么服务！\n~ -0.8 angry\nA 非常抱歉给您添麻烦了，我马上处理，工号3021。\nC 好吧。\n~ 0.2 neutral" + CLOSE)
    rec = report.figures.complaint_recovered
    assert rec.complaint and rec.source == "emotion"
    assert rec.lowest_valence == -0.8 and rec.end_valence == 0.2 and rec.recovered is True


def test_longest_dead_air_figure_skips_holds() -> None:
    report = audit(OPEN + "A 请稍等。\nhold +0.5\nresume +50\nA +0.5 让您久等了。\nA +12 查到了。" + CLOSE)
    assert 11.5 <= report.figures.longest_dead_air.seconds <= 12.5


def test_scoring_rule_ids_alone_is_scoring_their_findings() -> None:
    """A QA review scores the rule ids it keeps (service/qa): the same numbers as the findings themselves."""
    from rules.score import score_rule_hits

    config = load_rules_config()
    rule_ids = ["complaint.no_argue"] * 3 + ["promise.rash", "closing.caller_hangs_up_first"]
    assert score_rule_hits(rule_ids, config) == score_findings([_finding(r) for r in rule_ids], config)
    assert score_rule_hits([], config) == (100.0, [])
