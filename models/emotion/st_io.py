"""A byte-reproducible safetensors writer (the safetensors library may order the header's
metadata differently from run to run, which would change file hashes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

_DTYPES = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int64"): "I64",
           np.dtype("int32"): "I32"}


def write_safetensors(path: Path | str, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` (sorted by name) with sorted metadata; readable by ``safetensors``."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    offset = 0
    arrays = []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    raw = json.dumps(header, separators=(",", ":"), sort_keys=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for a in arrays:
            f.write(a.tobytes())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_rows(path: Path | str, name: str, rows: np.ndarray, block_rows: int = 8192) -> np.ndarray:
    """Rows `rows` (ascending) of the float32 matrix `name` in a safetensors file, read block by block with plain
    reads: neither the whole matrix nor a memory map of it ever becomes resident (the embedding table a lean
    tokenizer cuts, lean_tokenizer.py)."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        entry = json.loads(f.read(size))[name]
        if entry["dtype"] != "F32" or len(entry["shape"]) != 2:
            raise ValueError(f"{path}: {name} is not a float32 matrix")
        width = int(entry["shape"][1])
        start = 8 + size + int(entry["data_offsets"][0])
        out = np.empty((len(rows), width), dtype="<f4")
        done = 0
        for first in range(0, int(entry["shape"][0]), block_rows):
            wanted = rows[(rows >= first) & (rows < first + block_rows)]
            if not wanted.size:
                continue
            count = int(wanted[-1]) - first + 1
            block = np.frombuffer(os.pread(f.fileno(), count * width * 4, start + first * width * 4), dtype="<f4")
            out[done : done + wanted.size] = block.reshape(count, width)[wanted - first]
            done += wanted.size
    return out
