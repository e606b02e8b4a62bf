"""SQL lives in service/persistence (issue 13): nothing else opens a connection or builds a statement, so every
query goes through the repositories and their outage retry (service.persistence.engine.Database).

Checked on the source, as tests/test_layering.py checks imports: outside service/persistence/ (and the schema
history in service/migrations/, which runs inside Alembic's own transaction) no module may import SQLAlchemy
but for its error types, nor call `.connect()` / `.begin()` on an engine, nor run SQL text on a connection.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from test_layering import LAYERS, REPO

EXEMPT = ("service/persistence/", "service/migrations/")
# Naming SQLAlchemy's errors (to retry on them, to catch them) runs no SQL.
ALLOWED_IMPORTS = ("sqlalchemy.exc",)
CONNECTING = {"connect", "begin", "raw_connection"}
RUNNING_SQL = {"exec_driver_sql"}


def _dotted(node: ast.expr) -> str:
    """`store.db.engine` for that attribute chain; '' for anything that is not a plain chain of names."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def sql_outside_persistence(path: str, source: str) -> list[str]:
    """One line per place in `source` that imports SQLAlchemy (beyond its errors), opens a connection on an
    engine, or runs SQL text."""
    problems: list[str] = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        for module in modules:
            if module.split(".")[0] == "sqlalchemy" and not module.startswith(ALLOWED_IMPORTS):
                problems.append(f"{path}:{node.lineno} imports {module}: SQL belongs in service/persistence")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = _dotted(node.func.value)
            if node.func.attr in CONNECTING and receiver.split(".")[-1].endswith("engine"):
                problems.append(f"{path}:{node.lineno} calls {receiver}.{node.func.attr}(): only service/persistence "
                                "opens connections (under the outage retry)")
            elif node.func.attr in RUNNING_SQL:
                problems.append(f"{path}:{node.lineno} runs SQL ({node.func.attr}): SQL belongs in service/persistence")
    return problems


def _checked_files() -> list[Path]:
    packages = sorted(package for layer in LAYERS for package in layer)
    return [path for package in packages for path in sorted((REPO / package).rglob("*.py"))
            if not str(path.relative_to(REPO)).startswith(EXEMPT)]


def test_no_module_outside_persistence_opens_a_connection_or_builds_sql() -> None:
    problems: list[str] = []
    for path in _checked_files():
        problems += sql_outside_persistence(str(path.relative_to(REPO)), path.read_text("utf-8"))
    assert not problems, "SQL outside service/persistence:\n" + "\n".join(problems)


def test_the_check_reaches_the_service_and_spares_only_the_exempt_folders() -> None:
    checked = {str(p.relative_to(REPO)) for p in _checked_files()}
    assert "service/metrics.py" in checked and "service/access/guard.py" in checked and "service/audit/web/api.py" in checked
    assert not any(p.startswith(EXEMPT) for p in checked)


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy import select\n",
        "from sqlalchemy import text\n",
        "import sqlalchemy as sa\n",
        "from sqlalchemy.engine import Engine\n",
        "def f(store):\n    with store.db.engine.connect() as conn:\n        pass\n",
        "def f(engine):\n    with engine.begin() as conn:\n        pass\n",
        "def f(self):\n    with self.engine.connect() as conn:\n        pass\n",
        "def f(conn):\n    conn.exec_driver_sql('SELECT 1')\n",
    ],
)
def test_sql_and_connections_are_found(source: str) -> None:
    assert len(sql_outside_persistence("service/x.py", source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy.exc import OperationalError\n",
        "import websockets\nasync def f(url):\n    return await websockets.connect(url)\n",
        "def f(store):\n    return store.get_call('c1')\n",
        "from service.persistence.call_list import CallList\n",
    ],
)
def test_errors_other_connections_and_repositories_pass(source: str) -> None:
    assert sql_outside_persistence("service/x.py", source) == []
