"""One database: its engine, and the outage retry every statement on it runs under.

SQLite through SQLAlchemy by default; PostgreSQL (or any SQLAlchemy URL) by setting. Only portable SQL in
the repositories; what differs per database is in marked dialect branches.

A database that goes away for a few seconds (a restart, a fail-over) loses nothing: a statement that fails
because the connection is gone is retried with backoff for `retry_s` seconds, then the error surfaces. A
write that cannot simply run twice is told the attempt, so that from the second on it first checks whether
its earlier try committed before the connection broke (`write_once`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

# The logger's name is what operators' log filters know (docs/database.md shows its lines).
log = logging.getLogger("callwatch.store")
T = TypeVar("T")


def make_engine(url: str) -> Engine:
    """The engine for `url`: psycopg 3 for a bare `postgresql://` URL, connections checked before use (a
    restarted server leaves dead ones in the pool), SQLite tuned for concurrent writers."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2, which callwatch does not install.
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # Bound each connection attempt, so an unreachable host fails into the retry loop instead of
        # hanging for the TCP timeout.
        connect_args["connect_timeout"] = 5
    engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_for_concurrent_writers)
    return engine


def is_transient(err: DBAPIError) -> bool:
    """Whether `err` is the database being briefly away (worth retrying), not a bad statement or data."""
    if err.connection_invalidated:
        return True
    dialect_error = err.orig
    if isinstance(err, OperationalError) and "database is locked" in str(dialect_error):
        return True  # SQLite: another writer held the file past busy_timeout
    if not isinstance(err, (OperationalError, InterfaceError)) or type(dialect_error).__module__.startswith("sqlite3"):
        return False
    sqlstate = getattr(dialect_error, "sqlstate", None)
    if sqlstate is None:
        # No answer from a server at all: refused, reset, timed out, "starting up" before authentication.
        return not any(m in str(dialect_error) for m in _PERMANENT_CONNECT_FAILURES)
    # Connection exceptions, operator intervention (shutdown, "cannot connect now"), too many connections,
    # serialization failure and deadlock: all clear up on their own.
    return sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03", "53300", "40001", "40P01")


# Connection failures libpq reports without a SQLSTATE that a retry will not cure.
_PERMANENT_CONNECT_FAILURES = ("does not exist", "authentication failed", "no password supplied",
                               "no pg_hba.conf entry")


def is_duplicate(err: IntegrityError) -> bool:
    """A unique key collision (not, say, a foreign key pointing nowhere)."""
    return getattr(err.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(err.orig)


class Database:
    """The engine of one database URL and its outage retry; every repository's statements go through
    `retrying` (or `read`, `write`, `write_once`, which open the connection for them)."""

    def __init__(self, url: str, *, retry_s: float = 30.0):
        """`retry_s`: how long a statement keeps retrying while the database is unreachable."""
        self.engine: Engine = make_engine(url)
        self.retry_s = retry_s

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def retrying(self, operation: Callable[[int], T], *, within_s: float | None = None) -> T:
        """Run `operation(attempt)` until it gets through, while failures are transient and `within_s`
        (default: `retry_s`) lasts. `attempt` > 0 tells a write that an earlier try may have committed before
        its connection broke."""
        bound = self.retry_s if within_s is None else within_s
        deadline = time.monotonic() + bound
        delay = 0.05
        attempt = 0
        first_failure: float | None = None
        while True:
            try:
                result = operation(attempt)
            except DBAPIError as err:
                left = deadline - time.monotonic()
                if not is_transient(err) or left <= 0:
                    raise
                if first_failure is None:
                    first_failure = time.monotonic()
                    log.warning("database unreachable (%s); retrying for up to %g s", type(err.orig).__name__, bound)
                time.sleep(min(delay, left))
                delay = min(delay * 2, 1.0)
                attempt += 1
                continue
            if first_failure is not None:
                log.warning("database back after %.1f s; nothing lost", time.monotonic() - first_failure)
            return result

    def read(self, query: Callable[[Connection], T], *, within_s: float | None = None) -> T:
        """`query(conn)` on a connection of its own, retried whole."""
        def run(_attempt: int) -> T:
            with self.engine.connect() as conn:
                return query(conn)

        return self.retrying(run, within_s=within_s)

    def write(self, change: Callable[[Connection], T]) -> T:
        """`change(conn)` in one transaction, retried whole: for a change that leaves the same rows however
        often it runs (an overwrite, a delete-then-insert, an insert of only what is not there yet)."""
        return self.write_once(lambda conn, _attempt: change(conn))

    def write_once(self, change: Callable[[Connection, int], T]) -> T:
        """`change(conn, attempt)` in one transaction, retried whole: for a change that must not happen twice.
        From `attempt` 1 on, the first try may have committed before its connection broke: `change` checks."""
        def run(attempt: int) -> T:
            with self.engine.begin() as conn:
                return change(conn, attempt)

        return self.retrying(run)

    def ping(self) -> None:
        """Raise unless the database answers a trivial query now. Asked once, not retried: readiness wants
        to know whether the database answers, not to wait for it."""
        self.read(lambda conn: conn.exec_driver_sql("SELECT 1").close(), within_s=0)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_for_concurrent_writers(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web pages read while calls are being written; busy_timeout makes a writer wait for
    # another instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
