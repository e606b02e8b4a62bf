from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from models.emotion.config import DEFAULT_HEAD_PATH, LABELS, EmotionConfig
from models.emotion.data import DEFAULT_DATA, load_utterances
from models.emotion.head import LinearHead
from models.emotion.train import TrainConfig, fit_head


def test_shipped_head_is_small_and_matches_the_data() -> None:
    assert DEFAULT_HEAD_PATH.stat().st_size < 400_000
    head = LinearHead.load(DEFAULT_HEAD_PATH)
    assert head.labels == list(LABELS)
    # retrain after editing data/emotion/: the head records the data it was trained on
    assert head.meta["data_sha256"] == hashlib.sha256(DEFAULT_DATA.read_bytes()).hexdigest()


def test_head_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    h = LinearHead(rng.normal(size=(4, 8)).astype(np.float32), np.zeros(4, np.float32), list(LABELS),
                   mean=np.ones(8, np.float32), scale=np.full(8, 2.0, np.float32), prefix="passage: ")
    h.save(tmp_path / "h.safetensors")
    g = LinearHead.load(tmp_path / "h.safetensors")
    x = rng.normal(size=(3, 8)).astype(np.float32)
    assert np.allclose(h.logits(x), g.logits(x)) and g.prefix == "passage: "


def test_fit_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 16)).astype(np.float32)
    y = np.arange(80) % 4
    a = fit_head(x, y, TrainConfig())
    b = fit_head(x, y, TrainConfig())
    assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)


def test_dataset_is_labelled_split_and_disjoint() -> None:
    rows = load_utterances()
    assert len(rows) >= 300
    train = [r for r in rows if r.split == "train"]
    test = [r for r in rows if r.split == "test"]
    assert len(test) >= 100 and len(train) >= 2 * len(test)
    assert not {r.text for r in train} & {r.text for r in test}
    for r in rows:
        assert r.polarity in {"negative", "neutral", "positive"}
        assert not r.angry or r.polarity == "negative"
    domains = {r.domain for r in test}
    assert {"courier", "telecom", "bank", "ecommerce", "utilities", "airline", "insurance"} <= domains
    assert {r.polarity for r in test} == {"negative", "neutral", "positive"}


def test_config_from_dict() -> None:
    cfg = EmotionConfig.from_dict({"tracker": {"smoothing_tau_s": 5}, "voice": {"weights": {"rate": 0.5}}})
    assert cfg.tracker.smoothing_tau_s == 5
    assert cfg.voice.weights["rate"] == 0.5 and cfg.voice.weights["loudness"] == 0.35
    json.dumps(cfg.to_dict())
    try:
        EmotionConfig.from_dict({"tracker": {"nope": 1}})
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("unknown setting accepted")
