"""Shared fixtures: the real models, a real SQLite store, a real uvicorn server on loopback.

The shared recordings live beside the repository (`../shared/audio`, as in CI); CALLWATCH_SHARED_AUDIO
points elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from support.live_server import LiveServer

# The throwaway PostgreSQL (postgres_server, postgres_url, database_url, postgres_cluster).
pytest_plugins = ["support.postgres_plugin"]

REPO = Path(__file__).resolve().parents[1]
SHARED_AUDIO = Path(os.environ.get("CALLWATCH_SHARED_AUDIO", REPO.parent / "shared" / "audio"))


# What loads the models or starts a browser, a database, Redis or a server process. A test that uses one of
# these (or is marked `slow`) is `heavy` and left out of `make check`, the fast tier; `make test` runs all.
HEAVY_FIXTURES = {
    "runtime", "live_server", "audited", "audit_server", "e5_dir", "classifier", "tiny_classifier_dir", "vad",
    "browser", "new_page", "light_server", "postgres_server", "postgres_url", "postgres_cluster", "database_url",
    "redis_server", "redis_url", "server", "server_url", "cluster",
}


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("CALLWATCH_CACHE_DIR", str(Path.home() / ".cache" / "callwatch"))
    config.addinivalue_line("markers", "heavy: loads models or starts a browser, database or server (not in `make check`)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(item, "callspec", None)
        on_postgres = params is not None and any(isinstance(v, str) and v == "postgresql" for v in params.params.values())
        if (HEAVY_FIXTURES.intersection(getattr(item, "fixturenames", ())) or on_postgres
                or item.get_closest_marker("slow")):
            item.add_marker(pytest.mark.heavy)


@pytest.fixture(scope="session")
def shared_audio() -> Path:
    if not (SHARED_AUDIO / "MANIFEST.tsv").is_file():
        pytest.fail(f"shared recordings not found at {SHARED_AUDIO}; set CALLWATCH_SHARED_AUDIO")
    return SHARED_AUDIO


@pytest.fixture(scope="session")
def manifest(shared_audio: Path) -> dict[str, dict[str, str]]:
    import csv

    with (shared_audio / "MANIFEST.tsv").open(encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


@pytest.fixture(scope="session")
def clip(shared_audio: Path):
    """Load a shared clip as 16 kHz mono float32."""
    import soundfile as sf

    def load(name: str) -> np.ndarray:
        audio, rate = sf.read(shared_audio / name, dtype="float32")
        assert rate == 16000
        return audio if audio.ndim == 1 else audio.mean(axis=1)

    return load


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory):
    from service.settings import Settings

    data_dir = tmp_path_factory.mktemp("callwatch-data")
    return Settings(data_dir=data_dir, cache_dir=Path(os.environ["CALLWATCH_CACHE_DIR"]))


@pytest.fixture(scope="session")
def runtime(settings):
    """The real models and a real SQLite database, loaded once for the whole test session."""
    from service.runtime import Runtime

    rt = Runtime.load(settings)
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def live_server(runtime) -> Iterator[LiveServer]:
    """A real uvicorn server on loopback serving the real app around the shared runtime."""
    from service.app import create_app

    with LiveServer(create_app(runtime=runtime)) as server:
        yield server


@pytest.fixture(scope="session")
def call_timeline(shared_audio: Path):
    def load(name: str) -> dict[str, Any]:
        return json.loads((shared_audio / "calls" / f"{name}.json").read_text(encoding="utf-8"))

    return load
