"""Check a recording before it takes a place in the recogniser's queue, and say clearly why one cannot be
audited: empty, too large, not audio, corrupt, too long, more than two channels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.audio import load_audio_file
from service.audit.web.models import AuditOptions

# Magic numbers of the audio containers recorders write: a file that starts like one of these but does not
# open is a damaged recording, anything else is a format we do not take.
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xe3", b"OggS",
                b"fLaC", b"FORM", b".snd", b"#!AMR", b"\x30\x26\xb2\x75")


class AuditFileError(Exception):
    """A recording that cannot be audited; `code` is for machines, the message for the QA supervisor."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Probe:
    duration: float
    channels: int
    sample_rate: int
    codec: str
    container: str


def _looks_like_audio(head: bytes) -> bool:
    return any(head.startswith(m) for m in _AUDIO_MAGIC) or head[4:8] == b"ftyp"


def probe_recording(path: Path, options: AuditOptions) -> Probe:
    """Open, check and fully decode `path` (8 kHz decoding is cheap next to recognition). Raises
    AuditFileError with the reason."""
    import av

    if not path.is_file():
        raise AuditFileError("not_found", f"{path.name}: 文件不存在 (no such file)")
    size = path.stat().st_size
    if size == 0:
        raise AuditFileError("empty", f"{path.name}: 空文件 (the file is empty, 0 bytes)")
    if size > options.max_bytes:
        raise AuditFileError(
            "too_large", f"{path.name}: 文件过大 ({size / 1e6:.1f} MB, over the {options.max_bytes / 1e6:.0f} MB limit)"
        )
    with path.open("rb") as fh:
        head = fh.read(16)
    try:
        container = av.open(str(path))
    except Exception as err:  # PyAV raises a family of FFmpeg errors; all mean "cannot open"
        if _looks_like_audio(head):
            raise AuditFileError("corrupt", f"{path.name}: 文件已损坏 (damaged recording: {err})") from None
        raise AuditFileError("unsupported", f"{path.name}: 不支持的格式 (not an audio format FFmpeg reads)") from None
    with container:
        if not container.streams.audio:
            raise AuditFileError("no_audio", f"{path.name}: 没有音频 (the file holds no audio stream)")
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        channels = stream.codec_context.channels
        rate = stream.rate or stream.codec_context.sample_rate
        declared = float(container.duration / 1_000_000) if container.duration else None
        fmt = container.format.name
    if channels not in (1, 2):
        raise AuditFileError(
            "channels", f"{path.name}: 声道数不支持 ({channels} channels; a call recording is mono or stereo)"
        )
    # A header can already tell a 10-hour file: refuse it before decoding it.
    if declared is not None and declared > options.max_seconds * 1.05:
        raise AuditFileError("too_long", _too_long(path, declared, options))
    try:
        audio, rate = load_audio_file(str(path))
    except ValueError as err:
        if "no audio frames" in str(err):
            raise AuditFileError("no_audio", f"{path.name}: 没有音频 (no audio frames could be decoded)") from None
        raise AuditFileError("corrupt", f"{path.name}: 文件已损坏 ({err})") from None
    except Exception as err:
        raise AuditFileError("corrupt", f"{path.name}: 文件已损坏 (decoding failed: {err})") from None
    duration = len(audio) / rate
    if duration < 0.1:
        raise AuditFileError("no_audio", f"{path.name}: 没有音频 ({duration:.2f} s of audio)")
    if duration > options.max_seconds:
        raise AuditFileError("too_long", _too_long(path, duration, options))
    if not np.isfinite(audio).all():
        raise AuditFileError("corrupt", f"{path.name}: 文件已损坏 (the decoded audio holds invalid samples)")
    return Probe(duration=duration, channels=channels, sample_rate=int(rate), codec=codec, container=fmt)


def _too_long(path: Path, seconds: float, options: AuditOptions) -> str:
    return f"{path.name}: 录音过长 ({seconds / 60:.0f} min, over the {options.max_seconds / 60:.0f} min limit)"
