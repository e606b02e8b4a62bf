"""The real app served by uvicorn on loopback (support.live_server) over a real SQLite store and a real keys
file, holding audited calls (support.audited_call: a recording, its transcript, automatic score 85), for the
QA pages' browser tests that need their own people: the work queue and calibration pages."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support.audited_call import LightRuntime, store_audited_call
from support.live_server import LiveServer
from support.qa_app import Principals, write_keys_file
from support.stand_in_state import install_stand_in

from service.app import create_app
from service.persistence.call_store import CallStore
from service.settings import Settings


@dataclass
class ServedSite:
    url: str
    keys: dict[str, str]
    http: httpx.Client

    def api(self, method: str, path: str, who: str, body: dict[str, Any] | None = None) -> Any:
        """The API's answer to `who`; anything but 200 or 201 fails the test."""
        r = self.http.request(method, path, headers={"Authorization": f"Bearer {self.keys[who]}"}, json=body)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    def page(self, path: str, who: str | None) -> str:
        """The address that opens `path` signed in as `who` (?token=: the server sets the cookie and drops the key
        from the address); None: without a key, as the browser's cookie stands."""
        return f"{self.url}{path}" + (f"?token={self.keys[who]}" if who else "")


@contextmanager
def served_qa_site(tmp_path: Path, principals: Principals, calls: Mapping[str, tuple[str, str]]) -> Iterator[ServedSite]:
    """`calls`: call id → (agent id, tenant), each audited and stored before the server starts."""
    keys = write_keys_file(tmp_path / "keys.yaml", principals)
    store = CallStore(f"sqlite:///{tmp_path / 'callwatch.db'}")
    for call_id, (agent_id, tenant) in calls.items():
        store_audited_call(store, tmp_path, call_id, agent_id, tenant)
    app = install_stand_in(create_app(), LightRuntime(Settings(data_dir=tmp_path, keys_file=tmp_path / "keys.yaml"), store))
    try:
        with LiveServer(app, lifespan="off") as served, httpx.Client(base_url=served.url, timeout=30) as http:
            yield ServedSite(served.url, keys, http)
    finally:
        store.close()
