"""`callwatch emotion` as QA staff use it: utterances in, one JSON object per line out, real model."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow  # a process of its own, with the models
def test_emotion_command_labels_each_line_in_order():
    lines = ["你们这是什么服务！我都打了三次电话了！", "我的手机号是一三八一二三四五六七八", "好的好的，谢谢啊", ""]
    done = subprocess.run([sys.executable, "-m", "service.cli", "emotion"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["label"] for r in results[:3]] == ["angry", "neutral", "satisfied"]
    assert results[0]["valence"] < -0.5 < 0.5 < results[2]["valence"]
    assert results[3] == {"label": "neutral", "valence": 0.0, "confidence": 0.0, "polarity": "neutral"}
