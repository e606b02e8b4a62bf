"""A user's own sequence-classification model plugs in with a label map (a tiny local
model stands in for one from the hub)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.emotion import SentimentClassifier, SentimentConfig


@pytest.fixture(scope="module")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory, e5_dir: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=250037, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=3,
        id2label={0: "NEG", 1: "NEU", 2: "POS"}, label2id={"NEG": 0, "NEU": 1, "POS": 2},
    )
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():  # make the output depend on nothing but the bias: always POS
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 0.0, 5.0]))
    out = tmp_path_factory.mktemp("tiny") / "clf"
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(e5_dir / name, out / name)
    return out


def test_sequence_classifier_with_label_map(tiny_classifier_dir: Path) -> None:
    clf = SentimentClassifier.load(
        tiny_classifier_dir, None, {"NEG": "negative", "NEU": "neutral", "POS": "positive"}
    )
    r = clf.predict_one("随便一句话")
    assert r.label == "satisfied" and r.polarity == "positive" and r.valence > 0.9
    assert clf.predict_one("").confidence == 0.0


def test_unmapped_label_is_an_error(tiny_classifier_dir: Path) -> None:
    with pytest.raises(ValueError, match="label_map"):
        SentimentClassifier.load(config=SentimentConfig(model=str(tiny_classifier_dir), head=None))
