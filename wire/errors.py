"""How input that fails its model is described to whoever sent it: one wording for every socket and file."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError


def describe_invalid(error: ValidationError, whole: str = "message", names: Mapping[str, str] | None = None) -> str:
    """`where: why` for each problem, `; `-joined. `where` is the field's dotted path; an error about no one
    field (a model-level check) is put on `whole`, the name the sender knows the thing by (`metadata`,
    `event`). `names` maps a path to the sender's own name for it, where we built the model from theirs."""
    names = names or {}
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or whole
        parts.append(f"{names.get(where, where)}: {item['msg']}")
    return "; ".join(parts)
