from __future__ import annotations

import pytest

from models.emotion import EmotionOut, EmotionTracker, EmotionTurnOut, TextSentiment, TrackerConfig
from models.emotion.text import SentimentClassifier


def ts(label: str, conf: float = 0.9) -> TextSentiment:
    val = {"angry": -1.0, "upset": -0.8, "neutral": 0.0, "satisfied": 1.0}[label]
    pol = {"angry": "negative", "upset": "negative", "neutral": "neutral", "satisfied": "positive"}[label]
    probs = {k: (conf if k == label else (1 - conf) / 3) for k in ("angry", "upset", "neutral", "satisfied")}
    return TextSentiment(label, pol, val * conf, conf, probs)


def kinds(tracker: EmotionTracker) -> list[str]:
    return [e.kind for e in tracker.events]


def test_neutral_call_has_no_events() -> None:
    tr = EmotionTracker()
    for i in range(10):
        s, ev = tr.add(i * 5.0, ts("neutral"))
        assert ev == [] and s.label == "neutral" and not s.negative
    assert tr.summary()["turned_negative"] is False


def test_one_mild_negative_does_not_flip_the_curve() -> None:
    tr = EmotionTracker()
    tr.add(0, ts("neutral"))
    tr.add(5, ts("neutral"))
    _, ev = tr.add(10, ts("upset", 0.6))
    assert ev == []


def test_turn_and_recovery_synthetic() -> None:
    tr = EmotionTracker()
    tr.add(0, ts("neutral"))
    tr.add(6, ts("upset"))
    tr.add(12, ts("upset"))
    assert "turned_negative" in kinds(tr)
    tr.add(18, ts("angry"))
    assert kinds(tr).count("turned_angry") == 1
    tr.add(26, ts("neutral"))
    tr.add(32, ts("satisfied"))
    tr.add(38, ts("satisfied"))
    assert kinds(tr)[-1] == "recovered"
    summary = tr.summary()
    assert summary["recovered"] and summary["recovery"] > 0.8
    curve = tr.curve()
    assert len(curve) == 7 and min(v for _, v, _ in curve) < -0.5 and curve[-1][1] > 0.0


def test_angry_outburst_turns_at_once() -> None:
    tr = EmotionTracker()
    _, ev = tr.add(3, ts("angry", 0.95))
    assert [e.kind for e in ev] == ["turned_negative", "turned_angry"]


def test_voice_arousal_fuses_and_upgrades_upset_to_angry() -> None:
    tr = EmotionTracker(TrackerConfig(angry_arousal=0.7))
    s, _ = tr.add(1, ts("upset"), voice=0.95)
    assert s.label == "angry" and s.text_label == "upset" and s.arousal > 0.7
    s2, _ = EmotionTracker().add(1, ts("upset"), voice=0.2)
    assert s2.label == "upset" and s2.arousal < 0.4


def test_unusable_text_does_not_move_the_curve() -> None:
    tr = EmotionTracker()
    tr.add(0, ts("upset"))
    before = tr.samples[-1].smoothed_valence
    s, ev = tr.add(5, SentimentClassifier.unusable_result())
    assert s.smoothed_valence == pytest.approx(before) and ev == []


def test_wire_models() -> None:
    tr = EmotionTracker()
    s, ev = tr.add(2.5, ts("angry", 0.95), voice=0.8)
    out = EmotionOut.of(s).model_dump()
    assert {"t", "valence", "arousal", "label", "confidence"} <= set(out)
    assert EmotionTurnOut.of(ev[0]).kind == "turned_negative"


@pytest.mark.slow
def test_real_call_recovers_after_apology(classifier: SentimentClassifier) -> None:
    """Customer side of a courier complaint: angry, the agent apologises and acts, the
    customer calms down and thanks them. (Agent lines are not fed to the tracker.)"""
    customer = [
        (2.0, "喂，你好，我查一下我的快递"),
        (9.0, "都一个礼拜了还没到，你们到底怎么回事"),
        (17.0, "我都打了三次电话了，每次都说让我等"),
        (24.0, "你们这是什么服务！"),
        # agent: 非常抱歉让您久等了，我马上帮您联系网点加急处理
        (38.0, "嗯，那你帮我查一下现在到哪了"),
        (47.0, "今天下午能送到是吧"),
        (55.0, "好的好的，谢谢啊"),
        (60.0, "那就好，麻烦你了"),
    ]
    tr = EmotionTracker()
    for t, text in customer:
        tr.add(t, classifier.predict_one(text))
    ks = kinds(tr)
    assert "turned_negative" in ks and "recovered" in ks
    assert ks.index("turned_negative") < ks.index("recovered")
    turn = next(e for e in tr.events if e.kind == "turned_negative")
    rec = next(e for e in tr.events if e.kind == "recovered")
    assert 9.0 <= turn.t <= 24.0 and rec.t >= 47.0
    assert tr.samples[3].label == "angry"
    assert tr.summary()["recovered"] is True
