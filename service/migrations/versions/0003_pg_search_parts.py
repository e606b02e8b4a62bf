"""PostgreSQL full-text index: transcripts in parts, sides kept apart, rebuilt from the stored utterances.

The previous release indexed `to_tsvector('simple', agent || ' ' || customer || ' ' || other)`, one row a
call: a phrase could run from one side into the next, and a tsvector holds no position past 16383 nor more
than 256 per lexeme, so phrases deep in a long call were lost. Now a call is one or more overlapping parts
(`part`), each side in its own block of positions. Existing rows are rebuilt in the new form from
`utterances`, so a previous release's audited calls are searchable exactly like new ones.

SQLite's FTS5 index has neither limit: nothing changes there.

The tokeniser and the row builder are copied from service.audit.search as it was at this revision, so this
revision keeps doing what it did when the code moves on.
"""

from __future__ import annotations

import itertools
import re

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FTS_TABLE = "audit_fts"
COLUMNS = ("agent", "customer", "other")
PART_TOKENS = 4096
PART_OVERLAP = 64
MAX_POSITIONS = 256
_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[A-Za-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for run in _RUNS.findall(text):
        out += [run[i : i + 2] for i in range(len(run) - 1)] + [run[-1]] if _CJK.match(run) else [run.lower()]
    return out


def _tsvector(placed: list[tuple[str, int]]) -> str:
    positions: dict[str, list[int]] = {}
    for token, pos in placed:
        at = positions.setdefault(token, [])
        if len(at) < MAX_POSITIONS:
            at.append(pos)
    return " ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "':" + ",".join(map(str, ps))
                    for t, ps in positions.items())


def _parts(by_side: dict[str, list[str]]) -> list[dict[str, str]]:
    tokens = {col: _tokens("\n".join(by_side.get(col, []))) for col in COLUMNS}
    step = PART_TOKENS - PART_OVERLAP
    longest = max(len(t) for t in tokens.values())
    count = 1 if longest <= PART_TOKENS else 1 + -(-(longest - PART_TOKENS) // step)
    rows = []
    for k in range(count):
        window = {col: tokens[col][k * step : k * step + PART_TOKENS] for col in COLUMNS}
        row = {col: _tsvector([(t, i + 1) for i, t in enumerate(window[col])]) for col in COLUMNS}
        row["alltext"] = _tsvector([(t, j * (PART_TOKENS + 1) + i + 1)
                                    for j, col in enumerate(COLUMNS) for i, t in enumerate(window[col])])
        rows.append(row)
    return rows


_INSERT = sa.text(
    f"INSERT INTO {FTS_TABLE} (rowid_, part, agent, customer, other, alltext) VALUES (:r, :part, "
    "CAST(:agent AS tsvector), CAST(:customer AS tsvector), CAST(:other AS tsvector), CAST(:alltext AS tsvector))"
)


def _rebuild(bind: sa.engine.Connection) -> None:
    bind.execute(sa.text(f"DELETE FROM {FTS_TABLE}"))
    # One pass over all transcripts, streamed (a server-side cursor), written in batches.
    rows = bind.execute(sa.text(
        "SELECT c.rowid_, u.speaker, u.text FROM audit_calls c LEFT JOIN utterances u ON u.call_id = c.call_id "
        "ORDER BY c.rowid_, u.start"
    ), execution_options={"stream_results": True, "yield_per": 2000})
    batch: list[dict[str, object]] = []
    for rowid, lines in itertools.groupby(rows, key=lambda r: r[0]):
        by_side: dict[str, list[str]] = {col: [] for col in COLUMNS}
        for _, speaker, text in lines:
            if text is not None:
                by_side[speaker if speaker in ("agent", "customer") else "other"].append(text)
        batch += [{"r": rowid, "part": k, **row} for k, row in enumerate(_parts(by_side))]
        if len(batch) >= 500:
            _flush(bind, batch)
    _flush(bind, batch)


def _flush(bind: sa.engine.Connection, batch: list[dict[str, object]]) -> None:
    if batch:
        bind.execute(_INSERT, batch)
        batch.clear()


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {FTS_TABLE} ADD COLUMN part INTEGER NOT NULL DEFAULT 0")
    op.execute(f"ALTER TABLE {FTS_TABLE} DROP CONSTRAINT {FTS_TABLE}_pkey")
    op.execute(f"ALTER TABLE {FTS_TABLE} ADD CONSTRAINT {FTS_TABLE}_pkey PRIMARY KEY (rowid_, part)")
    _rebuild(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # One row a call again, as the previous code expects: its first part (the start of each side), which that
    # code's queries read as before.
    op.execute(f"DELETE FROM {FTS_TABLE} WHERE part > 0")
    op.execute(f"ALTER TABLE {FTS_TABLE} DROP CONSTRAINT {FTS_TABLE}_pkey")
    op.execute(f"ALTER TABLE {FTS_TABLE} DROP COLUMN part")
    op.execute(f"ALTER TABLE {FTS_TABLE} ADD CONSTRAINT {FTS_TABLE}_pkey PRIMARY KEY (rowid_)")
