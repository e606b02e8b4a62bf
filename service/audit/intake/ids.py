"""Stable ids: the same recording under the same name is the same call, however often it is audited."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._:\-]+")
CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def recording_call_id(sha256: str, file_name: str) -> str:
    """`rec-<stem>-<12 hex>`: the stem keeps it readable (ids must fit the protocol's character set), the
    hash of content and name keeps it unique and stable, so a re-run finds the call already stored."""
    stem = _UNSAFE.sub("_", Path(file_name).stem).strip("_")[:80] or "call"
    tag = hashlib.sha256(f"{sha256}:{Path(file_name).name}".encode()).hexdigest()[:12]
    return f"rec-{stem}-{tag}"


def new_id() -> str:
    return uuid.uuid4().hex
