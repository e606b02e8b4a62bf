"""Layers only look down (issue 13): a package imports itself and the layers below it, never one above.

Every import counts, wherever it stands: at the top, inside a function (the lazy ones) and under
TYPE_CHECKING, since each ties the lower package to the upper one all the same. tests/ is outside the layers:
it may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Lowest first; within a layer, a package imports neither of its neighbours.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"models"}),
    frozenset({"rules"}),  # the rules file checks its emotion section against models.emotion.config
    frozenset({"wire"}),  # an event's `t` has the rules' timeline bound (rules.timeline.MAX_CALL_TIME_S)
    frozenset({"pipelines"}),  # sessions build wire results from models' output and rules' findings
    # The ingest client encodes audio with pipelines.audio, and service/cli.py's `stream` and service/demo/ drive it.
    frozenset({"clients"}),
    frozenset({"service"}),
    frozenset({"benchmarks", "scripts"}),
)
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def imported_modules(module: str, is_package: bool, source: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, relative ones resolved against `module`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
                continue
            # `.` is the module's own package; a package's __init__ is that package itself.
            parts = module.split(".") if is_package else module.split(".")[:-1]
            base = parts[: len(parts) - (node.level - 1)]
            found.append((node.lineno, ".".join(base + ([node.module] if node.module else []))))
    return found


def upward_imports(path: str, module: str, is_package: bool, source: str) -> list[str]:
    """One line per import of `source` that reaches a layer at or above its own package's (another package)."""
    own = module.split(".")[0]
    below = sorted(package for package, rank in RANK.items() if rank < RANK[own])
    return [
        f"{path}:{line} ({module}) imports {target}: {own} may import only {', '.join(below) or 'no other package'}"
        for line, target in imported_modules(module, is_package, source)
        if (top := target.split(".")[0]) in RANK and top != own and RANK[top] >= RANK[own]
    ]


def _module_name(path: Path) -> tuple[str, bool]:
    parts = path.relative_to(REPO).with_suffix("").parts
    return (".".join(parts[:-1]), True) if parts[-1] == "__init__" else (".".join(parts), False)


def test_no_package_imports_a_layer_above_its_own() -> None:
    problems: list[str] = []
    for package in sorted(RANK):
        for path in sorted((REPO / package).rglob("*.py")):
            module, is_package = _module_name(path)
            problems += upward_imports(str(path.relative_to(REPO)), module, is_package, path.read_text("utf-8"))
    assert not problems, "imports that look up a layer:\n" + "\n".join(problems)


def test_every_package_has_a_layer() -> None:
    # A new top-level package with no layer would be checked by nothing, and free to import anything.
    packages = {path.parent.name for path in REPO.glob("*/__init__.py")}
    assert packages <= RANK.keys(), f"packages with no layer in LAYERS: {sorted(packages - RANK.keys())}"


@pytest.mark.parametrize(
    "source,line,target",
    [
        ("from service.x import y\n", 1, "service.x"),
        ("import service.runtime\n", 1, "service.runtime"),
        ("def later():\n    from service.x import y\n", 2, "service.x"),
        ("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from service.runtime import Runtime\n", 4,
         "service.runtime"),
        ("from clients.ingest_client import CallStream\n", 1, "clients.ingest_client"),
    ],
)
def test_an_import_from_above_is_named_with_its_module(source: str, line: int, target: str) -> None:
    assert upward_imports("pipelines/call_session.py", "pipelines.call_session", False, source) == [
        f"pipelines/call_session.py:{line} (pipelines.call_session) imports {target}: "
        "pipelines may import only models, rules, wire"
    ]


@pytest.mark.parametrize(
    "source",
    [
        "from wire.ingest import AudioFormat\nfrom rules.engine import RulesEngine\nimport models.asr\n",
        "from pipelines.audio import decode_frame\nfrom . import audio\nfrom .segmenter import UtteranceSegmenter\n",
        "import numpy as np\nfrom pydantic import BaseModel\n",
    ],
)
def test_imports_of_its_own_package_and_below_pass(source: str) -> None:
    assert upward_imports("pipelines/call_session.py", "pipelines.call_session", False, source) == []


def test_relative_imports_resolve_against_the_package() -> None:
    assert imported_modules("models.emotion", True, "from .config import LABELS\n") == [(1, "models.emotion.config")]
    assert imported_modules("models.emotion.text", False, "from .config import LABELS\n") == [
        (1, "models.emotion.config")
    ]
    assert imported_modules("models.emotion.text", False, "from .. import asr\n") == [(1, "models")]


def test_a_neighbour_in_the_same_layer_is_not_below() -> None:
    assert upward_imports("scripts/build.py", "scripts.build", False, "import benchmarks.asr\n") != []
