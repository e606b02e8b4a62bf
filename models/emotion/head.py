"""The classification head that sits on the frozen encoder, stored as safetensors.

Tensors: ``weight`` [n_labels, dim] and ``bias`` [n_labels] (float32); optionally a
``mean`` [dim] and ``scale`` [dim] standardisation applied to the pooled embedding first.
Metadata (strings): ``labels`` (JSON list), ``prefix`` (text prepended before encoding),
``pooling`` (``mean``), ``normalize`` (``1``: L2-normalise the pooled embedding),
``encoder`` (a note on which encoder it was trained on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class LinearHead:
    weight: np.ndarray  # [n_labels, dim]
    bias: np.ndarray  # [n_labels]
    labels: list[str]
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    prefix: str = "query: "
    pooling: str = "mean"
    normalize: bool = True
    meta: dict[str, str] = field(default_factory=dict)
    #: optional LoRA adapter for the encoder (``lora.<module>.A`` / ``.B``, B pre-scaled)
    lora: dict[str, np.ndarray] = field(default_factory=dict)

    def logits(self, emb: np.ndarray) -> np.ndarray:
        x = emb
        if self.mean is not None:
            x = x - self.mean
        if self.scale is not None:
            x = x / self.scale
        return x @ self.weight.T + self.bias

    def save(self, path: Path) -> None:
        from .st_io import write_safetensors

        tensors = {
            "weight": np.asarray(self.weight, dtype=np.float32),
            "bias": np.asarray(self.bias, dtype=np.float32),
        }
        if self.mean is not None:
            tensors["mean"] = np.asarray(self.mean, dtype=np.float32)
        if self.scale is not None:
            tensors["scale"] = np.asarray(self.scale, dtype=np.float32)
        for k, v in self.lora.items():
            tensors[k] = np.asarray(v, dtype=np.float16)
        meta = dict(self.meta)
        meta.update(
            labels=json.dumps(self.labels),
            prefix=self.prefix,
            pooling=self.pooling,
            normalize="1" if self.normalize else "0",
        )
        write_safetensors(path, tensors, meta)

    @classmethod
    def load(cls, path: Path | str) -> "LinearHead":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = dict(f.metadata() or {})
            t = {k: f.get_tensor(k) for k in f.keys()}
        labels = json.loads(meta.pop("labels"))
        if t["weight"].shape[0] != len(labels):
            raise ValueError(f"{path}: weight has {t['weight'].shape[0]} rows, {len(labels)} labels")
        return cls(
            weight=t["weight"].astype(np.float32),
            bias=t["bias"].astype(np.float32),
            labels=list(labels),
            mean=t.get("mean"),
            scale=t.get("scale"),
            prefix=meta.pop("prefix", "query: "),
            pooling=meta.pop("pooling", "mean"),
            normalize=meta.pop("normalize", "1") == "1",
            meta=meta,
            lora={k: v for k, v in t.items() if k.startswith("lora.")},
        )
