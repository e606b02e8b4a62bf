"""GET /v1/rules/names: the deployment's names table (rules/names.py), behind a key of any role, in the
OpenAPI description with its model."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from rules.catalog import RULE_IDS
from rules.config import load_rules_config_text
from rules.engine import RuleBook
from rules.names import name_table
from tests.support.renamed_rules import RENAMED


class _Runtime:
    def __init__(self, settings: object, rule_book: RuleBook):
        self.settings = settings
        self.rule_book = rule_book


def names_client(tmp_path: Path, rules_text: str | None, **settings: object) -> TestClient:
    from service.access.ring import KeyRing
    from service.app_state import get_key_ring, get_runtime
    from service.names_api import router
    from service.settings import Settings

    app = FastAPI()
    app.include_router(router)
    runtime = _Runtime(Settings(data_dir=tmp_path, **settings), RuleBook(load_rules_config_text(rules_text, "site.yaml")))
    ring = KeyRing()
    app.dependency_overrides[get_runtime] = lambda: runtime
    app.dependency_overrides[get_key_ring] = lambda: ring
    return TestClient(app)


def test_the_endpoint_serves_the_deployments_table(tmp_path: Path) -> None:
    body = names_client(tmp_path, RENAMED).get("/v1/rules/names").json()
    assert body == name_table(load_rules_config_text(RENAMED, "site.yaml")).model_dump()
    assert body["rules"]["listen.no_silence"] == "回应客户（本地）" and body["severities"]["warn"] == "留意（本地）"


def test_the_endpoint_asks_for_a_key_once_keys_are_configured(tmp_path: Path) -> None:
    client = names_client(tmp_path, None, agent_tokens={"a1": "tok-a1-secret"})
    assert client.get("/v1/rules/names").status_code == 401
    assert client.get("/v1/rules/names", headers={"Authorization": "Bearer nope"}).status_code == 403
    ok = client.get("/v1/rules/names", headers={"Authorization": "Bearer tok-a1-secret"})
    assert ok.status_code == 200 and set(ok.json()["rules"]) == set(RULE_IDS)


def test_the_endpoint_and_its_model_are_in_the_openapi_description() -> None:
    from service.app import create_app

    spec = create_app().openapi()
    answer = spec["paths"]["/v1/rules/names"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/NameTable"}
    assert {"rules", "severities", "recovery"} <= set(spec["components"]["schemas"]["NameTable"]["properties"])
