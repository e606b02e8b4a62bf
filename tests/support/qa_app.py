"""The real app (service.app.create_app) on a real SQLite store and a real keys file, for the /v1/qa tests of
plans, the queue, calibration and trends: what the QA routes use of the runtime, without models."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from support.stand_in_state import install_stand_in

from rules.config import load_rules_config
from rules.engine import RuleBook
from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from service.settings import Settings
from service.persistence.call_store import CallStore

RULE_BOOK = RuleBook(load_rules_config())  # the shipped rules, as a deployment without a rules file has

Principals = dict[str, tuple[str, str | None, Any]]  # name: (role, tenant, an agent's team or a supervisor's teams)


class ModelFreeRuntime:
    """What the QA routes use of the runtime: settings, the store, the deployment's rules. No models."""

    def __init__(self, settings: Settings, store: CallStore):
        self.settings = settings
        self.store = store
        self.rule_book = RULE_BOOK


@dataclass
class QAClient:
    http: TestClient
    store: CallStore
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)

    def as_(self, name: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"} if name else {}

    def get(self, path: str, who: str | None, **params: Any) -> httpx.Response:
        return self.http.get(path, headers=self.as_(who), params=params)

    def post(self, path: str, who: str | None, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(path, headers=self.as_(who), json=body)

    def put(self, path: str, who: str | None, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.put(path, headers=self.as_(who), json=body)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()


def write_keys_file(path: Path, principals: Principals) -> dict[str, str]:
    keys, spec = {}, KeysFile()
    for name, (role, tenant, team) in principals.items():
        keys[name] = f"cw_{secrets.token_urlsafe(16)}"
        extra = {"team": team} if role == "agent" and team else {"teams": team} if team else {}
        spec.principals.append(PrincipalSpec(role=role, name=name, tenant=tenant,
                                             keys=[KeySpec(sha256=digest_of(keys[name]))], **extra))
    save_keys_file(path, spec)
    return keys


def qa_client(tmp_path: Path, principals: Principals, database: Path) -> QAClient:
    """The app over the SQLite database at `database` (already seeded), with a keys file of `principals`."""
    settings = Settings(data_dir=tmp_path, keys_file=tmp_path / "keys.yaml")
    keys = write_keys_file(tmp_path / "keys.yaml", principals)
    store = CallStore(f"sqlite:///{database}")
    app = install_stand_in(create_app(), ModelFreeRuntime(settings, store))
    return QAClient(TestClient(app), store, settings, keys)
