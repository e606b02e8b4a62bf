"""Apply the revisions in `versions/` to an engine: no alembic.ini, no working-directory assumptions.

Three kinds of database meet `upgrade_to_head`:
- empty: every revision runs, from 0001;
- a previous release's (its tables, no `alembic_version`): adopted at the 0001 baseline, then upgraded;
- one already under Alembic: upgraded from where it is (nothing to do when it is at head).

Several processes may start together against one database; one of them migrates while the others wait, then
find the database at head: on PostgreSQL under a session-level advisory lock, on SQLite under an exclusive
lock on a file beside the database (SQLite's DDL is not transactional here, so two processes both creating
the missing tables would collide).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("callwatch.migrations")

BASELINE = "0001"
"""The revision that is the schema of the last release before migrations (git f99fc2b)."""

# Any fixed 64-bit number, the same in every callwatch process: "callwatc" in ASCII.
ADVISORY_LOCK_KEY = 0x63616C6C77617463
SQLITE_LOCK_SUFFIX = ".migrations.lock"
PREVIOUS_RELEASE_TABLE = "calls"
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at this package; `connection` is what env.py migrates."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no revisions in service/migrations/versions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database or one of the previous release."""
    # Read directly rather than through Alembic's MigrationContext, which logs at INFO on every call and this
    # runs at every store start and audit-table check.
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema to the newest revision; two small queries when it already is."""
    if current_revision(engine) == head_revision():
        return
    upgrade(engine, "head")


def upgrade(engine: Engine, target: str = "head") -> None:
    with engine.connect() as conn, _migration_lock(conn):
        cfg = alembic_config(conn)
        if _is_previous_release(conn):
            log.info("database of the previous release: adopting it at revision %s", BASELINE)
            # 0001 creates only what is missing (that release created the audit tables on first use), so this
            # fills the gaps and stamps the baseline without touching a row.
            command.upgrade(cfg, BASELINE)
        command.upgrade(cfg, target)
        conn.commit()


def downgrade(engine: Engine, target: str) -> None:
    """Undo revisions down to `target` ("base" drops every table callwatch made)."""
    with engine.connect() as conn, _migration_lock(conn):
        command.downgrade(alembic_config(conn), target)
        conn.commit()


def _is_previous_release(conn: Connection) -> bool:
    tables = set(inspect(conn).get_table_names())
    # Reading the catalogue began a transaction; end it so Alembic runs its own.
    conn.rollback()
    return PREVIOUS_RELEASE_TABLE in tables and VERSION_TABLE not in tables


def sqlite_lock_path(conn: Connection) -> Path | None:
    """The lock file of an SQLite database file (`callwatch.db.migrations.lock` beside it); None for an
    in-memory database, which no other process can open."""
    url = conn.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" or url.query.get("uri"):
        return None
    return Path(url.database + SQLITE_LOCK_SUFFIX)


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    if conn.dialect.name == "postgresql":
        with _advisory_lock(conn):
            yield
        return
    lock_path = sqlite_lock_path(conn)
    if lock_path is None:
        yield
        return
    # The file stays: removing it would let a process lock a file that another has just replaced. The lock
    # goes with the descriptor, so a process killed mid-migration does not leave it held.
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(conn: Connection) -> Iterator[None]:
    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
    conn.commit()
    try:
        yield
    finally:
        try:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
        except DBAPIError:
            pass  # the session is gone, and its lock with it; the error that matters is already raised
