"""Full-text search over transcripts, in Chinese, on SQLite (FTS5) or PostgreSQL (tsvector + GIN).

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
from sqlalchemy.engine import Connection, Engine

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

def _pg_quote(token: str) -> str:
    return "'" + token.replace("'", "''") + "'"


def _tsquery(terms: list[list[str]]) -> str:
    parts = []
    for tokens in terms:
        if len(tokens) == 1 and tokens[0].endswith("*"):
            parts.append(f"{_pg_quote(tokens[0][:-1])}:*")
        else:
            parts.append("(" + " <-> ".join(_pg_quote(t.rstrip("*")) for t in tokens) + ")")
    return " & ".join(parts)


def create_fts(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            # Contentless: the transcripts live in `utterances`; the index holds only tokens and positions.
            conn.execute(text(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(agent, customer, other, "
                "content='', tokenize='unicode61 remove_diacritics 0')"
            ))
        elif engine.dialect.name == "postgresql":
            conn.execute(text(
                f"CREATE TABLE IF NOT EXISTS {FTS_TABLE} (rowid_ BIGINT PRIMARY KEY, agent TSVECTOR, "
                "customer TSVECTOR, other TSVECTOR, alltext TSVECTOR)"
            ))
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS ix_{FTS_TABLE}_all ON {FTS_TABLE} USING GIN (alltext)"))
            for col in COLUMNS:
                conn.execute(text(f"CREATE INDEX IF NOT EXISTS ix_{FTS_TABLE}_{col} ON {FTS_TABLE} USING GIN ({col})"))


def index_document(conn: Connection, rowid: int, by_side: dict[str, str]) -> None:
    """Add one call's transcript (`by_side`: agent/customer/other → plain text) under `rowid`."""
    values = {col: index_tokens(by_side.get(col, "")) for col in COLUMNS}
    if conn.dialect.name == "sqlite":
        conn.execute(text(f"INSERT INTO {FTS_TABLE}(rowid, agent, customer, other) VALUES (:r, :agent, :customer, :other)"),
                     {"r": rowid, **values})
    elif conn.dialect.name == "postgresql":
        conn.execute(text(
            f"INSERT INTO {FTS_TABLE}(rowid_, agent, customer, other, alltext) VALUES (:r, "
            "to_tsvector('simple', :agent), to_tsvector('simple', :customer), to_tsvector('simple', :other), "
            "to_tsvector('simple', :agent || ' ' || :customer || ' ' || :other)) ON CONFLICT (rowid_) DO NOTHING"
        ), {"r": rowid, **values})


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
    terms = query_terms(q)
    if not terms:
        return None
    if dialect == "sqlite":
        return (f"c.rowid_ IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts)",
                {"fts": _fts5_query(terms, speaker)})
    if dialect == "postgresql":
        col = speaker or "alltext"
        return (f"c.rowid_ IN (SELECT rowid_ FROM {FTS_TABLE} WHERE {col} @@ to_tsquery('simple', :fts))",
                {"fts": _tsquery(terms)})
    pattern = like_pattern(q) or q
    side = "AND u.speaker = :speaker" if speaker else ""
    return (f"EXISTS (SELECT 1 FROM utterances u WHERE u.call_id = c.call_id {side} AND u.text LIKE :like)",
            {"like": f"%{pattern}%", "speaker": speaker})
