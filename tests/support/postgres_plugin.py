"""A throwaway PostgreSQL for tests (registered from tests/conftest.py, so every test folder can use it).

`postgres_server` (session): CALLWATCH_TEST_POSTGRES_URL when set (a role that may create databases), else a
cluster of its own: initdb into a temporary folder owned by the `postgres` user (PostgreSQL refuses to run as
root), listening on 127.0.0.1 on a free port with its unix socket in that folder, stopped and removed at the
end of the session. With CI set, no PostgreSQL is a failure; elsewhere the tests skip, saying why.

`postgres_url`: a fresh, empty database for one test. `database_url`: the same test once on SQLite, once on
PostgreSQL. `postgres_cluster`: a cluster the test may stop and start (the outage tests).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.live_server import free_port

PG_ROOTS = (Path("/usr/lib/postgresql"),)
ADMIN_USER = "postgres"




def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian keeps them out of PATH), or one on PATH."""
    found = [p for root in PG_ROOTS for p in root.glob("*/bin") if (p / "initdb").is_file()]
    if found:
        return max(found, key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresCluster:
    """A private PostgreSQL: its own data folder, port and socket; start/stop as the tests need."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="callwatch-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        # PostgreSQL will not run as root: hand the folder to the postgres user and run the tools as it.
        self.run_as = ["runuser", "-u", ADMIN_USER, "--"] if os.geteuid() == 0 else []
        if self.run_as:
            shutil.chown(self.root, user=ADMIN_USER)

    def _tool(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        # Run from the cluster's own folder: the postgres user may not be allowed into the current one.
        result = subprocess.run([*self.run_as, str(self.bin_dir / name), *args], capture_output=True, text=True,
                                timeout=120, cwd=self.root, check=False)
        if result.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:] if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{name} {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}\n{log}")
        return result

    def init(self) -> PostgresCluster:
        # The C locale makes ordering byte order, as on SQLite; trust auth is fine on a loopback-only
        # throwaway. No fsync: the data dies with the test session anyway.
        self._tool("initdb", "-D", str(self.data), "-U", ADMIN_USER, "--auth=trust", "--encoding=UTF8",
                   "--locale=C", "--no-sync")
        return self

    def start(self) -> None:
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._tool("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                   "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._tool("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{ADMIN_USER}@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        try:
            if self.is_running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class PostgresServer:
    """Where test databases are made: an admin URL, and the cluster when these tests started it."""

    def __init__(self, admin_url: str, cluster: PostgresCluster | None):
        from sqlalchemy import create_engine

        self.admin_url = admin_url
        self.cluster = cluster
        self._admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        from sqlalchemy import text

        name = f"cw_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\''))
        return self._admin.url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        self._admin.dispose()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL: {reason} (install postgresql, or set CALLWATCH_TEST_POSTGRES_URL)")


def _start_cluster() -> PostgresCluster:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable("no initdb under /usr/lib/postgresql/*/bin or on PATH")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.init().start()
    except Exception as err:  # noqa: BLE001 - the binaries are there: not starting is a failure, never a skip
        cluster.destroy()
        pytest.fail(f"could not start PostgreSQL from {bin_dir}: {err}", pytrace=False)
    return cluster


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    external = os.environ.get("CALLWATCH_TEST_POSTGRES_URL")
    cluster = None if external else _start_cluster()
    server = PostgresServer(external or cluster.url(), cluster)  # type: ignore[union-attr]
    try:
        yield server
    finally:
        server.close()
        if cluster is not None:
            cluster.destroy()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The test runs on each database: a new SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'callwatch.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture(scope="session")
def postgres_cluster(postgres_server: PostgresServer) -> Iterator[PostgresCluster]:
    """A cluster these tests control (to stop and start it): the session's own, or, when the session uses an
    outside server, a private one."""
    if postgres_server.cluster is not None:
        yield postgres_server.cluster
        return
    cluster = _start_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()
