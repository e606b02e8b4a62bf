"""Log lines: plain text for a terminal, one JSON object per line for a log collector.

A call's identity (call id, agent, integrator) is kept in a context variable while its websocket is being
served, so every line logged on the call's behalf carries it, whichever module logs it: the ingest handler,
the call's pipeline tasks and the store threads they start all inherit the context.

No line carries a key: the QA pages take `?token=KEY` once, and uvicorn's access lines (and its websocket
lines) quote the whole URL, so every query parameter named like a key has its value replaced by
`[redacted]`, in both formats (`redact_secrets`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

LogFormat = Literal["text", "json"]


@dataclass(frozen=True)
class CallLogContext:
    call_id: str | None = None
    agent_id: str | None = None
    integrator: str | None = None

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


_call_context: ContextVar[CallLogContext] = ContextVar("callwatch_call_log_context", default=CallLogContext())


def bind_call_context(**fields: str | None) -> CallLogContext:
    """Add to the calling task's log context (and to the tasks and threads it starts from now on)."""
    current = _call_context.get()
    updated = CallLogContext(**{**asdict(current), **{k: v for k, v in fields.items() if v is not None}})
    _call_context.set(updated)
    return updated


# Query parameters whose value is a key: these names, and any ending in `_token` or `_key` (case, `-` or `_`).
SECRET_PARAMETERS = frozenset({"token", "key", "apikey", "api_key", "access_token", "secret", "password"})
_QUERY_PARAMETER = re.compile(r"([?&])([^?&=#\s\"']+)=([^&#\s\"']*)")
REDACTED = "[redacted]"


def _is_secret(name: str) -> bool:
    plain = unquote_plus(name).strip().lower().replace("-", "_")
    return plain in SECRET_PARAMETERS or plain.endswith(("_token", "_key"))


def redact_secrets(text: str) -> str:
    """`text` with the value of every query parameter named like a key replaced by [redacted]; the name is
    matched as a server decodes it (`%74oken` is `token`), the rest of the URL is left as it was."""
    if "=" not in text:
        return text
    return _QUERY_PARAMETER.sub(
        lambda m: f"{m[1]}{m[2]}={REDACTED}" if m[3] and _is_secret(m[2]) else m[0], text)


# Attributes every LogRecord has; anything else on a record came from `extra=` and is worth keeping.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "color_message"}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The call context and the record's `extra=` values (an explicit extra wins over the context)."""
    fields: dict[str, Any] = dict(_call_context.get().fields())
    for key, value in vars(record).items():
        if key not in _RECORD_ATTRS and not key.startswith("_"):
            fields[key] = value
    return fields


class JsonLogFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", call_id?, agent_id?, integrator?, ...extra, exception?}`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # Before serialising: a value cut out of the JSON text could take an escape's backslash with it.
        return json.dumps({k: redact_secrets(v) if isinstance(v, str) else v for k, v in line.items()},
                          ensure_ascii=False, default=str)


class TextLogFormatter(logging.Formatter):
    """`2026-11-23 09:30:12,345 INFO callwatch.ingest: call started [call_id=c1 agent_id=a-1042]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = record_fields(record)
        if fields:
            head, sep, tail = text.partition("\n")  # keep a traceback below the line it belongs to
            text = f"{head} [{' '.join(f'{k}={v}' for k, v in fields.items())}]{sep}{tail}"
        return redact_secrets(text)


def configure_logging(log_format: LogFormat = "text", level: str = "info") -> logging.Handler:
    """One handler on the root logger, on standard error; uvicorn's loggers propagate to it (serve passes
    uvicorn `log_config=None`), so its access and error lines come out in the same format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else TextLogFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
