from __future__ import annotations

import io
import json

import pytest

from models.emotion import LABELS, SentimentClassifier
from models.emotion.cli import emotion_cli_main

ANGRY = [
    "你们这是什么服务！",
    "你们到底能不能办事啊，我说了多少遍了",
    "我要投诉你们，把你们经理叫来",
    "凭什么扣我的钱，我根本没开通过",
]
# angry or resigned: negative either way
RESIGNED = ["算了算了，跟你说也没用", "行了，我也懒得跟你们说了", "我都打了三次电话了，到现在还没人给我解决"]
NEUTRAL = ["我的手机号是一三八…", "我想查一下我的快递到哪了", "订单号是二零二四一一零五", "请问营业厅几点下班"]
THANKFUL = ["好的好的，谢谢啊", "太感谢你了，帮了我大忙", "那就好，我放心了"]


@pytest.mark.slow
@pytest.mark.parametrize("text", ANGRY)
def test_angry(classifier: SentimentClassifier, text: str) -> None:
    r = classifier.predict_one(text)
    assert r.polarity == "negative" and r.valence < -0.3, (text, r)
    assert r.label == "angry", (text, r)


@pytest.mark.slow
@pytest.mark.parametrize("text", RESIGNED)
def test_resigned_is_negative(classifier: SentimentClassifier, text: str) -> None:
    r = classifier.predict_one(text)
    assert r.polarity == "negative" and r.valence < -0.3, (text, r)


@pytest.mark.slow
@pytest.mark.parametrize("text", NEUTRAL)
def test_neutral(classifier: SentimentClassifier, text: str) -> None:
    r = classifier.predict_one(text)
    assert r.label == "neutral" and abs(r.valence) < 0.3, (text, r)


@pytest.mark.slow
@pytest.mark.parametrize("text", THANKFUL)
def test_thankful(classifier: SentimentClassifier, text: str) -> None:
    r = classifier.predict_one(text)
    assert r.label == "satisfied" and r.valence > 0.3, (text, r)


@pytest.mark.slow
def test_batch_keeps_order_and_matches_single(classifier: SentimentClassifier) -> None:
    texts = ANGRY + NEUTRAL + THANKFUL
    batch = classifier.predict(texts)
    for t, b in zip(texts, batch):
        s = classifier.predict_one(t)
        assert s.label == b.label
        assert abs(s.valence - b.valence) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    ["", "   ", "\n", "。。。！", "好", "嗯", "a", "aaaa", "谢" * 10_000, "x" * 10_000,
     "Thanks a lot, that solved it!", "これは何ですか", "😡😡😡", "12345", "\x00\x01"],
)
def test_bad_input_has_defined_result(classifier: SentimentClassifier, text: str) -> None:
    r = classifier.predict_one(text)
    assert r.label in LABELS
    assert -1.0 <= r.valence <= 1.0 and 0.0 <= r.confidence <= 1.0
    assert abs(sum(r.probs.values()) - 1.0) < 1e-4


@pytest.mark.slow
def test_unusable_text_is_neutral_with_no_confidence(classifier: SentimentClassifier) -> None:
    for text in ["", "  ", "。。。", "aaaa", "😡"]:
        r = classifier.predict_one(text)
        assert (r.label, r.valence, r.confidence) == ("neutral", 0.0, 0.0)
    assert classifier.predict([]) == []


@pytest.mark.slow
def test_cli_prints_one_json_object_per_line(classifier: SentimentClassifier) -> None:
    out = io.StringIO()
    rc = emotion_cli_main(io.StringIO("你们这是什么服务！\n\n好的好的，谢谢啊\n我的手机号是一三八…"), out, classifier)
    assert rc == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["label"] for r in rows] == ["angry", "neutral", "satisfied", "neutral"]
    for r in rows:
        assert set(r) >= {"label", "valence", "confidence"}
    assert rows[1]["confidence"] == 0.0
