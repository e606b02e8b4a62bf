"""The lean tokenizer gives the sentiment encoder the same ids as XLM-R's full tokenizer for the text it reads
(models/emotion/lean_tokenizer.py), with the padding and truncation of transformers' tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from models.emotion.data import load_utterances
from models.emotion.lean_tokenizer import LeanTokenizer

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"
MAX_TOKENS = 128


def _texts() -> list[str]:
    texts = [u.text for u in load_utterances()]
    texts += [line.strip() for seed in sorted(SEEDS.glob("*.txt")) for line in seed.read_text(encoding="utf-8").splitlines()
              if line.strip()]
    # What ASR text also holds: digits, English words and brands, full-width forms, mixed punctuation.
    texts += ["我的订单号是 20261123-0042，手机尾号 8857", "这个 APP 的 iPhone 版本 OK 吗？", "ＡＢＣ１２３，（全角）",
              "passage: 退款 refund 还没到账!!", "嗯……那个、就是说——", ""]
    return texts


@pytest.fixture(scope="module")
def tokenizers(e5_dir: Path) -> tuple[LeanTokenizer, object]:
    return LeanTokenizer(e5_dir), AutoTokenizer.from_pretrained(str(e5_dir))


def test_chinese_and_ascii_text_gets_the_full_vocabularys_ids(tokenizers) -> None:
    lean, full = tokenizers
    texts = _texts()
    assert len(texts) > 1000, "the training data and the seed documents should both be there"
    for start in range(0, len(texts), 64):
        batch = texts[start : start + 64]
        got = lean(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        want = full(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        assert lean.full_ids[got["input_ids"].numpy()].tolist() == want["input_ids"].tolist(), batch
        assert got["attention_mask"].tolist() == want["attention_mask"].tolist()


def test_long_text_is_truncated_as_the_model_reads_it(tokenizers) -> None:
    lean, full = tokenizers
    text = "您好，这里是客服中心，请问有什么可以帮您？" * 40
    got = lean.full_ids[lean([text], truncation=True, max_length=MAX_TOKENS)["input_ids"][0].numpy()].tolist()
    assert len(got) == MAX_TOKENS
    assert got == full([text], truncation=True, max_length=MAX_TOKENS, return_tensors="pt")["input_ids"][0].tolist()


def test_a_script_outside_the_kept_set_reads_as_unknown(tokenizers) -> None:
    lean, full = tokenizers
    ids = lean.full_ids[lean(["привет 你好"])["input_ids"][0].numpy()].tolist()
    assert full.unk_token_id in ids
    assert ids != full(["привет 你好"], return_tensors="pt")["input_ids"][0].tolist()
    assert ids[-3:] == full(["你好"], return_tensors="pt")["input_ids"][0].tolist()[-3:]


def test_the_cut_table_embeds_as_the_full_one(e5_dir: Path, tokenizers) -> None:
    """The encoder with its table cut to the lean rows, in half precision, gives the full encoder's hidden states
    to within half precision's rounding, and the same sentence embedding direction."""
    import torch
    from transformers import AutoModel

    from models.emotion.lean_tokenizer import lean_word_embeddings

    lean, full = tokenizers
    whole = AutoModel.from_pretrained(str(e5_dir)).eval()
    cut = AutoModel.from_pretrained(str(e5_dir)).eval()
    lean_word_embeddings(cut, e5_dir / "model.safetensors", lean.full_ids)
    assert cut.get_input_embeddings().weight.shape[0] == len(lean.full_ids) < 150_000
    texts = ["我要投诉你们的快递，三天了还没到", "好的，谢谢您，再见"]
    with torch.inference_mode():
        a = whole(**full(texts, padding=True, return_tensors="pt")).last_hidden_state
        b = cut(**lean(texts)).last_hidden_state
    assert (a - b).abs().max().item() < 1e-3
    pooled_a, pooled_b = a.mean(dim=1), b.mean(dim=1)
    assert torch.nn.functional.cosine_similarity(pooled_a, pooled_b).min().item() > 0.9999
