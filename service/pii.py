"""Masking personal numbers in transcripts: phone numbers, 18-digit ID numbers and bank card numbers, written
as digits or spoken digit by digit in Chinese (一三八…, 幺三八…), keeping the last four digits.

A number is recognised by its shape, not by the words around it, because ASR text rarely has the words right:
a run of digits (separated at most by spaces or dashes, or by the commas ASR puts between spoken groups) is a
mobile number with 11 digits starting 13–19 (optionally after 86), a landline with 10–12 digits starting 0, an
ID number with 18 (the last may be X), a bank card with 16–19. Anything else is left alone: prices, times,
dates, order and extension numbers, amounts read with place values (一千二百八十) — they are not personal and
QA needs them. The digits kept are the last four, in the form they were written; separators stay, so the
sentence still reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MASK = "*"
KEEP_LAST = 4

_ARABIC = {**{str(d): str(d) for d in range(10)}, **{chr(0xFF10 + d): str(d) for d in range(10)}}
# Digit-by-digit readings. 幺 is how 1 is read in numbers on the phone; 两 is sometimes said for 2.
_CHINESE = {"零": "0", "〇": "0", "○": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4",
            "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_DIGITS = {**_ARABIC, **_CHINESE}
# Between the groups of one number: spaces and dashes always; commas only between Chinese digits, since
# after Arabic ones a comma is a thousands separator or a list (1,280元; 12, 15, 18).
_GROUP_SEPARATORS = set(" \u00a0\u3000-‐‑–—")
_SPOKEN_SEPARATORS = set("，,、")
_MAX_GAP = 2  # separator characters between two digits of one number ("， ", " - " is 3: not one number)

# Number shapes, on the digit string (X only as an ID's last character).
_SHAPES = (
    ("mobile", re.compile(r"(?:86)?1[3-9]\d{9}")),
    ("landline", re.compile(r"0\d{9,11}")),
    ("id_number", re.compile(r"[1-9]\d{16}[\dX]")),
    ("bank_card", re.compile(r"[1-9]\d{15,18}")),
)


@dataclass
class _Run:
    """Consecutive digits of the text: their positions, values, and where a separator gap preceded each."""

    positions: list[int]
    values: list[str]
    gap_before: list[bool]

    def digits(self, lo: int = 0, hi: int | None = None) -> str:
        return "".join(self.values[lo:hi])


def number_kind(digits: str) -> str | None:
    """Which personal number a digit string is (`mobile`, `landline`, `id_number`, `bank_card`), or None."""
    for kind, shape in _SHAPES:
        if shape.fullmatch(digits):
            return kind
    return None


def _runs(text: str) -> list[_Run]:
    runs: list[_Run] = []
    current: _Run | None = None
    gap = ""
    for i, ch in enumerate(text):
        value = _DIGITS.get(ch)
        if value is None and ch in "Xx" and current is not None and not gap and len(current.values) == 17:
            value = "X"  # an ID number's check character
        if value is not None:
            joins = current is not None and len(gap) <= _MAX_GAP and (
                not gap or all(c in _GROUP_SEPARATORS for c in gap)
                or (ch in _CHINESE and current.values and text[current.positions[-1]] in _CHINESE
                    and all(c in _GROUP_SEPARATORS or c in _SPOKEN_SEPARATORS for c in gap))
            )
            if not joins:
                current = _Run([], [], [])
                runs.append(current)
            assert current is not None
            current.gap_before.append(bool(gap) and bool(current.values))
            current.positions.append(i)
            current.values.append(value)
            gap = ""
            if value == "X":
                current = None  # nothing continues an ID number after its check character
        elif current is not None and (ch in _GROUP_SEPARATORS or ch in _SPOKEN_SEPARATORS):
            gap += ch
            if len(gap) > _MAX_GAP:
                current, gap = None, ""
        else:
            current, gap = None, ""
    return runs


def _personal_spans(run: _Run) -> list[tuple[int, int]]:
    """Index ranges of the run that are personal numbers: the whole run, or else its separated groups
    (`100 13812345678`: an amount, then a phone number)."""
    if number_kind(run.digits()):
        return [(0, len(run.values))]
    starts = [0] + [k for k in range(1, len(run.values)) if run.gap_before[k]] + [len(run.values)]
    spans = []
    for lo, hi in zip(starts, starts[1:]):
        if number_kind(run.digits(lo, hi)):
            spans.append((lo, hi))
    return spans


def mask_text(text: str) -> str:
    """The text with every personal number masked but its last four digits."""
    if not text:
        return text
    chars = list(text)
    changed = False
    for run in _runs(text):
        for lo, hi in _personal_spans(run):
            for k in range(lo, hi - KEEP_LAST):
                chars[run.positions[k]] = MASK
                changed = True
    return "".join(chars) if changed else text


# Report and export fields that carry what people said or a number that identifies someone. Ids, rule ids,
# times and hashes are never masked: they are not personal and links depend on them.
MASKED_FIELDS = frozenset({"text", "detail", "evidence", "prompt", "seed", "suggestion", "caller_number", "snippet",
                           "file_name"})


def mask_fields(value: Any, *, fields: frozenset[str] = MASKED_FIELDS) -> Any:
    """A copy of a JSON-like value (a report, a CSV row) with the personal numbers in `fields` masked,
    at any depth."""
    if isinstance(value, dict):
        return {k: (_mask_all(v) if k in fields else mask_fields(v, fields=fields)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_fields(v, fields=fields) for v in value]
    return value


def _mask_all(value: Any) -> Any:
    """Every string inside a masked field (evidence may be a string or a list of quoted utterances)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_all(v) for v in value]
    return value


def masked(value: Any, enabled: bool) -> Any:
    """A report, a list page or export rows as they may leave the service: masked when the deployment asks
    for it (CALLWATCH_MASK_PII), else unchanged."""
    return mask_fields(value) if enabled else value
