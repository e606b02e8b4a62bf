"""The embedded encoder's tokenizer, cut to the characters a Mandarin call is written in.

XLM-R's vocabulary is 250,000 pieces in a hundred scripts; loaded by HF `tokenizers` it held 280 MiB of
resident memory (transformers' `AutoTokenizer` over the same file, more), a fifth of a server against issue 13's
1.5 GiB target for a whole instance. Customer text here is Chinese with some ASCII (digits, "OK", "APP"). Beside
the built encoder (`encoder_build.py`) lie therefore `tokenizer.lean.json`: only the pieces made entirely of
`kept_character`s (104,000), and `tokenizer.lean.ids.npy`, each kept piece's id in the full vocabulary, which
is what the encoder's embedding table is indexed by. They are derived from `tokenizer.json` whenever missing.

For text made only of kept characters the ids are the same as the full tokenizer's, by construction: a
unigram tokenizer chooses among the pieces that match the text, and every piece that can match such text is
kept (tests/emotion/test_lean_tokenizer.py checks the training data and the rulebook's documents). A character
outside the set (Cyrillic, Hangul, accented Latin) becomes `<unk>` instead of its own pieces.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .st_io import read_rows

if TYPE_CHECKING:
    import torch
    from transformers import BatchEncoding

LEAN_TOKENIZER = "tokenizer.lean.json"
LEAN_IDS = "tokenizer.lean.ids.npy"


def kept_character(ch: str) -> bool:
    """ASCII, SentencePiece's word marker, CJK ideographs, CJK and general punctuation, kana, full-width forms."""
    o = ord(ch)
    return (o < 0x80 or ch == "\u2581" or 0x2000 <= o <= 0x206F or 0x3000 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF
            or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF)


def write_lean_tokenizer(full_tokenizer: Path, folder: Path) -> None:
    """`tokenizer.lean.json` and `tokenizer.lean.ids.npy` in `folder`, from a unigram `tokenizer.json`."""
    spec = json.loads(full_tokenizer.read_text(encoding="utf-8"))
    model = spec["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"{full_tokenizer}: a unigram tokenizer is expected, not {model.get('type')}")
    special = {t["id"] for t in spec.get("added_tokens", [])} | {model["unk_id"]}
    old_ids = [i for i, (piece, _) in enumerate(model["vocab"]) if i in special or all(map(kept_character, piece))]
    new_id = {old: new for new, old in enumerate(old_ids)}
    model["vocab"] = [model["vocab"][i] for i in old_ids]
    model["unk_id"] = new_id[model["unk_id"]]
    for token in spec.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    for token in (spec.get("post_processor") or {}).get("special_tokens", {}).values():
        token["ids"] = [new_id[i] for i in token["ids"]]
    (folder / LEAN_TOKENIZER).write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    np.save(folder / LEAN_IDS, np.asarray(old_ids, dtype=np.int64))


def ensure_lean_tokenizer(folder: Path) -> None:
    """Write the lean tokenizer beside `folder`'s `tokenizer.json` unless it is there; atomically, as servers and
    workers sharing a cache may start at once."""
    if (folder / LEAN_TOKENIZER).exists() and (folder / LEAN_IDS).exists():
        return
    with tempfile.TemporaryDirectory(dir=folder, prefix=".lean-") as tmp:
        write_lean_tokenizer(folder / "tokenizer.json", Path(tmp))
        os.replace(Path(tmp) / LEAN_IDS, folder / LEAN_IDS)
        os.replace(Path(tmp) / LEAN_TOKENIZER, folder / LEAN_TOKENIZER)


class LeanTokenizer:
    """Callable as the classifier calls a transformers tokenizer: texts in, `input_ids` and `attention_mask` out,
    padded to the longest and truncated as `AutoTokenizer` pads and truncates. The ids are the lean vocabulary's:
    the encoder reads them through `lean_word_embeddings`, its table cut to the same rows (`full_ids` maps them
    back to the full vocabulary)."""

    def __init__(self, folder: Path, pad_token: str = "<pad>") -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(folder / LEAN_TOKENIZER))
        self.full_ids = np.load(folder / LEAN_IDS)
        pad_id = self._tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ValueError(f"{folder / LEAN_TOKENIZER} has no {pad_token!r} token to pad with")
        self._tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)

    def __call__(self, texts: Sequence[str], padding: bool = True, truncation: bool = True,
                 max_length: int | None = None, return_tensors: str = "pt") -> BatchEncoding:
        if not padding or return_tensors != "pt":
            raise ValueError("LeanTokenizer gives padded PyTorch tensors only")
        import torch
        from transformers import BatchEncoding

        if truncation and max_length:
            self._tokenizer.enable_truncation(max_length)
        else:
            self._tokenizer.no_truncation()
        encodings = self._tokenizer.encode_batch(list(texts))
        return BatchEncoding({"input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
                              "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)})


def lean_word_embeddings(model: torch.nn.Module, weights_file: Path, full_ids: np.ndarray) -> None:
    """Give `model` (in place) a word-embedding table of only the lean vocabulary's rows, in float16, read from
    its weights file so that the full table (366 MiB) is never read: loaded by memory map, it would otherwise
    become resident page by page as ever more pieces are read, and a long-running server grow by it. Half
    precision halves the 152 MiB left; the hidden states move by about 1e-4 (tested) and the test split's
    predictions not at all (benchmarks/emotion.py)."""
    import torch

    class HalfPrecisionTable(torch.nn.Module):
        """Rows kept in float16, handed on as the float32 the layers after them expect."""

        def __init__(self, rows: torch.Tensor) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(rows.to(torch.float16), requires_grad=False)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.embedding(input_ids, self.weight).to(torch.float32)

    rows = read_rows(weights_file, "embeddings.word_embeddings.weight", full_ids)
    model.set_input_embeddings(HalfPrecisionTable(torch.from_numpy(rows)))
