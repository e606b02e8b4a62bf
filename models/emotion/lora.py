"""Low-rank adapters (LoRA) for the encoder's Linear layers: trained with the head, merged
into the weights at load time (no inference cost), shipped inside the head file."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _linear_targets(model, targets: tuple[str, ...]) -> dict[str, Any]:
    import torch

    return {
        name: mod
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] in targets and ".layer." in f".{name}"
    }


def apply_lora(model, targets: tuple[str, ...], rank: int, alpha: float, dropout: float = 0.0, seed: int = 0):
    """Wrap each targeted Linear with a trainable low-rank update; returns the wrappers by name."""
    import torch
    from torch import nn

    class _LoRA(nn.Module):
        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.scale = alpha / rank
            self.A = nn.Parameter(torch.empty(rank, base.in_features))
            self.B = nn.Parameter(torch.zeros(base.out_features, rank))
            nn.init.kaiming_uniform_(self.A, a=math.sqrt(5), generator=gen)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            return self.base(x) + (self.drop(x) @ self.A.T @ self.B.T) * self.scale

    gen = torch.Generator().manual_seed(seed)
    wrapped = {}
    for name, mod in _linear_targets(model, targets).items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        w = _LoRA(mod)
        setattr(parent, attr, w)
        wrapped[name] = w
    return wrapped


def lora_state(wrapped: dict, dtype=np.float16) -> dict[str, np.ndarray]:
    out = {}
    for name, w in wrapped.items():
        out[f"lora.{name}.A"] = w.A.detach().cpu().numpy().astype(dtype)
        out[f"lora.{name}.B"] = (w.B.detach().cpu().numpy() * w.scale).astype(dtype)  # scale folded in
    return out


def merge_lora(model, tensors: dict[str, np.ndarray]) -> int:
    """Add ``B @ A`` to each targeted weight in place; returns how many were merged."""
    import torch

    names = sorted({k[len("lora."): -2] for k in tensors if k.startswith("lora.")})
    with torch.no_grad():
        for name in names:
            lin = model.get_submodule(name)
            a = torch.from_numpy(tensors[f"lora.{name}.A"].astype(np.float32))
            b = torch.from_numpy(tensors[f"lora.{name}.B"].astype(np.float32))
            lin.weight += (b @ a).to(lin.weight.dtype)
    return len(names)
