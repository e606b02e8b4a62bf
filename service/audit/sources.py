"""Turn what the user named (files, folders) into the recordings of a batch, each with its metadata."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from service.audit.metadata import metadata_beside, resolve_meta
from service.audit.models import RecordingMeta
from service.audit.queue import NewFile

# What recorders write; a folder is searched for these. A file named explicitly is taken whatever its name
# (if it is not audio, its job fails with the reason).
AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".flac", ".amr", ".wma", ".au", ".gsm", ".mka",
                  ".vox", ".aiff", ".aif", ".caf", ".webm"}
# The operating system's limits (Linux NAME_MAX and PATH_MAX, in bytes of the file system's encoding).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


def path_problem(raw: str) -> str | None:
    """Why a path named in a request can be no file's (None: it may be one). Checked before the path is
    resolved, since resolving or stat-ing such a path raises instead of answering."""
    if "\x00" in raw:
        return "contains a NUL character"
    try:
        encoded = os.fsencode(raw)
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry
        return "is not text the file system can name"
    if len(encoded) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if any(len(name) > MAX_NAME_BYTES for name in encoded.split(b"/")):
        return f"has a file or folder name longer than {MAX_NAME_BYTES} bytes"
    try:
        os.stat(encoded)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "goes round a loop of symbolic links"
        if err.errno == errno.ENAMETOOLONG:  # a file system with shorter limits than Linux's own
            return "is too long a name for the file system"
    return None


def expand(inputs: list[Path]) -> list[Path]:
    """Files as given, folders searched recursively for audio, in a stable order, without duplicates."""
    out: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        found = (sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
                 if item.is_dir() else [item])
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def recordings(inputs: list[Path], request_meta: RecordingMeta | None = None) -> list[NewFile]:
    """The batch's files, each with metadata from its name, a CSV beside it, and the request (in that
    order of precedence, lowest first)."""
    beside: dict[Path, dict[str, RecordingMeta]] = {}
    out: list[NewFile] = []
    for path in expand(inputs):
        folder = path.parent.resolve()
        if folder not in beside:
            beside[folder] = metadata_beside(folder) if folder.is_dir() else {}
        out.append(NewFile(path=path, file_name=path.name, meta=resolve_meta(path.name, beside[folder], request_meta)))
    return out
