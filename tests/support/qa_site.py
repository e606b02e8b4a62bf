"""The real app (service.app.create_app) on a real SQLite store and keys file, around a runtime without models,
holding two audited calls of acme's team east-1 (c-1042 of agent A1042, c-1043 of A1043): for the QA pages'
tests that need no browser, through FastAPI's TestClient."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from support.audited_call import LightRuntime, store_audited_call, write_keys
from support.stand_in_state import install_stand_in

from service.app import create_app
from service.settings import Settings
from service.persistence.call_store import CallStore


class QaSite:
    def __init__(self, tmp: Path, mask_pii: bool = False):
        settings = Settings(data_dir=tmp, keys_file=tmp / "keys.yaml", mask_pii=mask_pii)
        self.keys = write_keys(tmp / "keys.yaml")
        self.store = CallStore(f"sqlite:///{tmp / 'callwatch.db'}")
        store_audited_call(self.store, tmp, "c-1042", "A1042", "acme")
        store_audited_call(self.store, tmp, "c-1043", "A1043", "acme")
        app = install_stand_in(create_app(), LightRuntime(settings, self.store))
        self.http = TestClient(app, follow_redirects=False)

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def post(self, path: str, who: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(path, headers=self.as_(who), json=body)

    def submitted_review(self, call_id: str) -> str:
        """The call's review, every finding confirmed and submitted by the reviewer qa.li; its id."""
        opened = self.post(f"/v1/qa/calls/{call_id}/review", "qa.li")
        assert opened.status_code == 201, opened.text
        review = opened.json()
        for f in review["findings"]:
            self.post(f"/v1/qa/reviews/{review['review_id']}/findings/{f['finding_id']}/decision", "qa.li",
                      {"decision": "confirm"})
        assert self.post(f"/v1/qa/reviews/{review['review_id']}/submit", "qa.li").status_code == 200
        return str(review["review_id"])
