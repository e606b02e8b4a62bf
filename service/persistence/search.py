"""Full-text search over transcripts, in Chinese, on SQLite (FTS5) or PostgreSQL (tsvector + GIN).

The index structures themselves (FTS5's virtual table, PostgreSQL's `audit_fts` with its GIN indexes) are
created by the revisions in `service.migrations`.

Chinese has no spaces, and neither FTS5's unicode61 nor PostgreSQL's `simple` configuration segments it.
So both get the same pre-tokenised text: every run of Chinese characters becomes its overlapping character
bigrams plus its last character alone; runs of Latin letters and digits are one lower-case token each. A
query is tokenised the same way and searched as a phrase of bigrams (consecutive positions), so `投诉` finds
投诉 and not 投 … 诉; a one-character query is a prefix search over the bigrams. This needs no dictionary (jieba
would miss agents' product names and mis-split ASR errors) and matches any substring of two characters or
more.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from models.text import to_simplified

_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[A-Za-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
COLUMNS = ("agent", "customer", "other")
FTS_TABLE = "audit_fts"


def _run_tokens(run: str) -> list[str]:
    if not _CJK.match(run):
        return [run.lower()]
    return [run[i : i + 2] for i in range(len(run) - 1)] + [run[-1]]


def index_tokens(text_: str) -> str:
    """The text as the index stores it: space-separated bigram tokens."""
    return " ".join(tok for run in _RUNS.findall(text_) for tok in _run_tokens(run))


def query_terms(q: str) -> list[list[str]]:
    """Each whitespace-separated term of a query as its token sequence (bigrams, no trailing unigram, so the
    phrase also matches inside longer runs); a single Chinese character becomes a one-token prefix term
    marked with a trailing '*'."""
    terms: list[list[str]] = []
    for term in to_simplified(q).split():
        tokens: list[str] = []
        for run in _RUNS.findall(term):
            if _CJK.match(run):
                tokens += [run[i : i + 2] for i in range(len(run) - 1)] if len(run) > 1 else [run + "*"]
            else:
                tokens.append(run.lower() + "*")
        if tokens:
            terms.append(tokens)
    return terms


def like_pattern(q: str) -> str | None:
    """The longest plain piece of the query, for picking a snippet out of the transcript."""
    pieces = sorted(_RUNS.findall(to_simplified(q)), key=len, reverse=True)
    return pieces[0] if pieces else None


# --- SQLite FTS5 ---------------------------------------------------------------------

def _fts5_query(terms: list[list[str]], column: str | None) -> str:
    parts = []
    for tokens in terms:
        if len(tokens) == 1 and tokens[0].endswith("*"):
            expr = f'"{tokens[0][:-1]}" *'
        else:
            expr = '"' + " ".join(t.rstrip("*") for t in tokens) + '"'
        parts.append(f"{{{column}}} : {expr}" if column else expr)
    return " AND ".join(parts)


# --- PostgreSQL ----------------------------------------------------------------------
# The tsvectors are built here, not by to_tsvector: the tokens already are what the index needs, and placing
# them in Python keeps the sides apart in `alltext` (a phrase never runs from the agent's last words into the
# customer's first, as FTS5 phrases never cross columns) without depending on the server's parser or locale.
# A tsvector keeps at most 256 positions per lexeme and none past 16383, so a long transcript is stored as
# overlapping parts; a search term matches a call if it matches any part.

PG_PART_TOKENS = 4096
PG_PART_OVERLAP = 64  # a phrase of up to this many tokens always lies wholly inside one part
_PG_MAX_POSITIONS = 256


def _pg_quote(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsvector(placed: list[tuple[str, int]]) -> str:
    """A tsvector literal from (token, position) pairs."""
    positions: dict[str, list[int]] = {}
    for token, pos in placed:
        at = positions.setdefault(token, [])
        if len(at) < _PG_MAX_POSITIONS:
            at.append(pos)
    return " ".join(f"{_pg_quote(t)}:{','.join(map(str, ps))}" for t, ps in positions.items())


def pg_parts(by_side: dict[str, str]) -> list[dict[str, str]]:
    """One call's transcript as the rows of the PostgreSQL index: tsvector literals per side and for all
    sides, part by part (one part unless a side holds more than PG_PART_TOKENS tokens)."""
    tokens = {col: index_tokens(by_side.get(col, "")).split() for col in COLUMNS}
    step = PG_PART_TOKENS - PG_PART_OVERLAP
    longest = max(len(t) for t in tokens.values())
    count = 1 if longest <= PG_PART_TOKENS else 1 + -(-(longest - PG_PART_TOKENS) // step)
    parts = []
    for k in range(count):
        window = {col: tokens[col][k * step : k * step + PG_PART_TOKENS] for col in COLUMNS}
        row = {col: _tsvector([(t, i + 1) for i, t in enumerate(window[col])]) for col in COLUMNS}
        # Each side gets its own block of positions in `alltext`, one position apart at least.
        row["alltext"] = _tsvector([(t, j * (PG_PART_TOKENS + 1) + i + 1)
                                    for j, col in enumerate(COLUMNS) for i, t in enumerate(window[col])])
        parts.append(row)
    return parts


def _tsquery(tokens: list[str]) -> str:
    """One query term as a tsquery literal: a phrase of bigrams, or a prefix."""
    if len(tokens) == 1 and tokens[0].endswith("*"):
        return f"{_pg_quote(tokens[0][:-1])}:*"
    return " <-> ".join(_pg_quote(t.rstrip("*")) for t in tokens)


# --- both --------------------------------------------------------------------------

def index_document(conn: Connection, rowid: int, by_side: dict[str, str]) -> None:
    """Add one call's transcript (`by_side`: agent/customer/other → plain text) under `rowid`."""
    if conn.dialect.name == "sqlite":
        values = {col: index_tokens(by_side.get(col, "")) for col in COLUMNS}
        conn.execute(text(f"INSERT INTO {FTS_TABLE}(rowid, agent, customer, other) VALUES (:r, :agent, :customer, :other)"),
                     {"r": rowid, **values})
    elif conn.dialect.name == "postgresql":
        conn.execute(text(
            f"INSERT INTO {FTS_TABLE} (rowid_, part, agent, customer, other, alltext) VALUES (:r, :part, "
            "CAST(:agent AS tsvector), CAST(:customer AS tsvector), CAST(:other AS tsvector), "
            "CAST(:alltext AS tsvector)) ON CONFLICT DO NOTHING"
        ), [{"r": rowid, "part": k, **row} for k, row in enumerate(pg_parts(by_side))])


def has_document(conn: Connection, rowid: int) -> bool:
    if conn.dialect.name == "sqlite":
        # A contentless table still answers rowid lookups from its docsize shadow table.
        return conn.execute(text(f"SELECT 1 FROM {FTS_TABLE}_docsize WHERE id = :r"), {"r": rowid}).first() is not None
    if conn.dialect.name == "postgresql":
        return conn.execute(text(f"SELECT 1 FROM {FTS_TABLE} WHERE rowid_ = :r"), {"r": rowid}).first() is not None
    return True


def match_clause(dialect: str, q: str, speaker: str | None) -> tuple[str, dict[str, Any]] | None:
    """SQL that is true for audit_calls rows (alias `c`) whose transcript matches `q`; None if `q` holds
    nothing searchable. A LIKE over utterances serves other databases (slow, but correct)."""
    if speaker is not None and speaker not in COLUMNS:
        raise ValueError(f"speaker must be one of {COLUMNS}, not {speaker!r}")
    terms = query_terms(q)
    if not terms:
        return None
    if dialect == "sqlite":
        return (f"c.rowid_ IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts)",
                {"fts": _fts5_query(terms, speaker)})
    if dialect == "postgresql":
        # One condition per term: the terms of a query may sit in different parts of a long call.
        col = speaker or "alltext"
        clauses = [f"c.rowid_ IN (SELECT rowid_ FROM {FTS_TABLE} WHERE {col} @@ CAST(:fts{i} AS tsquery))"
                   for i in range(len(terms))]
        return " AND ".join(clauses), {f"fts{i}": _tsquery(tokens) for i, tokens in enumerate(terms)}
    pattern = like_pattern(q) or q
    side = "AND u.speaker = :speaker" if speaker else ""
    return (f"EXISTS (SELECT 1 FROM utterances u WHERE u.call_id = c.call_id {side} AND u.text LIKE :like)",
            {"like": f"%{pattern}%", "speaker": speaker})
