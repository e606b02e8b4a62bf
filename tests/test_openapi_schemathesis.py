"""Schemathesis over the app's OpenAPI description: every REST operation, called with generated requests and
a valid key on a real server, never answers 5xx and answers what its schema says.

The server has its own store (a re-audit with `apply` may rewrite what it finds) beside the shared models.
Lean on purpose: a few examples per operation, the same ones every run.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from support.keyed_server import close_private, private_runtime
from support.live_server import LiveServer
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app

EXAMPLES = 6
KEY = f"cw_{secrets.token_urlsafe(24)}"  # a deployment-wide supervisor: every REST operation admits it

# The description is the app's own (it depends on no settings or models); requests go to the real server.
schema = schemathesis.openapi.from_dict(create_app().openapi())


@pytest.fixture(scope="module")
def server_url(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    save_keys_file(tmp / "keys.yaml", KeysFile(principals=[
        PrincipalSpec(role="supervisor", name="chief", keys=[KeySpec(sha256=digest_of(KEY))])]))
    rt = private_runtime(runtime, tmp, tmp / "keys.yaml")
    try:
        with LiveServer(create_app(runtime=rt)) as server:
            yield server.url
    finally:
        close_private(rt)


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
GENERATION = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


@schema.parametrize()
@GENERATION
def test_api_keeps_its_schema_and_never_fails(case: Any, server_url: str) -> None:
    case.call_and_validate(base_url=server_url, headers={"Authorization": f"Bearer {KEY}"}, checks=CHECKS)
