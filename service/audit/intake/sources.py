"""Turn what the user named (files, folders) into the recordings of a batch, each with its metadata.

A path batch is confined to import folders (service/audit/web/api.py checks the paths it names). What a folder
holds is checked too, each entry where it really is (every symbolic link followed): an import share is
written by others, and a link in one tenant's folder may lead to another tenant's recordings or anywhere on
the server. A file or folder whose real place is outside the allowed folders is listed but not read (its
job is `skipped` with the reason), and so is a loop of links; a linked folder inside them is read once.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from service.audit.intake.metadata import metadata_beside, resolve_meta
from service.audit.jobs.queue import NewFile
from service.audit.web.models import RecordingMeta

# What recorders write; a folder is searched for these. A file named explicitly is taken whatever its name
# (if it is not audio, its job fails with the reason).
AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".flac", ".amr", ".wma", ".au", ".gsm", ".mka",
                  ".vox", ".aiff", ".aif", ".caf", ".webm"}
OUTSIDE = "outside_import_folder"
LINK_LOOP = "link_loop"
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


class LinkLoop(OSError):
    """A symbolic link that leads back to itself, however many links on."""


@dataclass(frozen=True)
class Refused:
    """An entry listed but not to be audited, and why."""

    path: Path
    code: str
    reason: str


def real_path(path: Path) -> Path:
    """Where `path` really is, every symbolic link followed. Raises LinkLoop for a loop of links and
    FileNotFoundError where nothing is there (a dangling link)."""
    try:
        return Path(os.path.realpath(path, strict=True))
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise LinkLoop(errno.ELOOP, "a loop of symbolic links", str(path)) from None
        raise


def inside(path: Path, roots: list[Path]) -> bool:
    """Whether the real path `path` is one of `roots` (real paths too) or below one."""
    return any(path == r or r in path.parents for r in roots)


def expand(inputs: list[Path], allowed: Callable[[Path], bool] = lambda _real: True) -> list[Path | Refused]:
    """Files as given, folders searched recursively for audio, in a stable order, without duplicates. An
    entry whose real place `allowed` refuses, or a loop of links, is a Refused one."""
    out: list[Path | Refused] = []
    seen: set[Path | Refused] = set()
    folders: set[Path] = set()
    for item in inputs:
        found = _listing(item, allowed, folders) if item.is_dir() else _named_file(item, allowed)
        for p in found:
            key = p if isinstance(p, Refused) else _real_or_absolute(p)
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def _named_file(path: Path, allowed: Callable[[Path], bool]) -> list[Path | Refused]:
    """A file named itself is taken whatever its name; one that is not there fails as `not_found` later."""
    try:
        target = real_path(path)
    except LinkLoop:
        return [_loop(path)]
    except OSError:
        return [path]
    return [path] if allowed(target) else [_outside(path, target)]


def _real_or_absolute(path: Path) -> Path:
    try:
        return real_path(path)
    except OSError:
        return path.absolute()


def _loop(entry: Path) -> Refused:
    return Refused(entry, LINK_LOOP, f"{entry.name}: 符号链接循环，未审核 (a loop of symbolic links: not audited)")


def _outside(entry: Path, target: Path) -> Refused:
    what = "文件夹" if target.is_dir() else "文件"
    return Refused(entry, OUTSIDE, f"{entry.name}: 链接指向导入目录以外的{what}，未审核 "
                                   "(a link to a place outside the import folders: not audited)")


def _listing(folder: Path, allowed: Callable[[Path], bool], folders: set[Path]) -> Iterator[Path | Refused]:
    """The audio under `folder`, depth first in name order; each folder (by real place) read once, so a link
    to a folder above it ends there instead of going round."""
    try:
        real = real_path(folder)
        if real in folders:
            return
        folders.add(real)
        entries = sorted(folder.iterdir())
    except OSError:  # unreadable, or gone meanwhile: nothing to list, as before
        return
    for entry in entries:
        try:
            target = real_path(entry)
        except LinkLoop:
            yield _loop(entry)
            continue
        except OSError:
            continue  # a dangling link: no file there
        if not allowed(target):
            if target.is_dir() or entry.suffix.lower() in AUDIO_SUFFIXES:
                yield _outside(entry, target)
            continue
        if target.is_dir():
            yield from _listing(entry, allowed, folders)
        elif target.is_file() and entry.suffix.lower() in AUDIO_SUFFIXES:
            yield entry


def recordings(inputs: list[Path], request_meta: RecordingMeta | None = None,
               roots: list[Path] | None = None) -> list[NewFile]:
    """The batch's files, each with metadata from its name, a CSV beside it, and the request (in that
    order of precedence, lowest first). With `roots` (real paths), what folders hold is read only where it
    really is inside them; the rest are jobs that are skipped, saying why."""
    allowed = (lambda real: inside(real, roots)) if roots is not None else (lambda _real: True)
    beside: dict[Path, dict[str, RecordingMeta]] = {}
    out: list[NewFile] = []
    for path in expand(inputs, allowed):
        if isinstance(path, Refused):
            out.append(NewFile(path=path.path, file_name=path.path.name, refused=(path.code, path.reason)))
            continue
        folder = path.parent.resolve()
        if folder not in beside:
            beside[folder] = metadata_beside(folder) if folder.is_dir() else {}
        out.append(NewFile(path=path, file_name=path.name, meta=resolve_meta(path.name, beside[folder], request_meta)))
    return out
