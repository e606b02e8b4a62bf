"""Who may stream over AudioHook: the `X-API-KEY` must be one of callwatch's integrator keys and, with a
client secret configured, the request must carry a valid HTTP message signature made with it; a call is
stored under the tenant of the key that admitted it. On a real server with a real keys file; refusals are
AudioHook's own (`disconnect` with reason `unauthorized`, then the client's close transaction)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest
from support.keyed_server import close_private, private_runtime
from support.live_server import LiveServer

from clients.platforms.audiohook import play_call
from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from service.connectors.http_signature import SignatureError, verify

SECRET = base64.b64encode(secrets.token_bytes(32)).decode()

# "Example 1" of Genesys's AudioHook protocol documentation (also in Genesys's reference implementation's
# tests): a signed upgrade request, its client secret, and when it was made.
EXAMPLE_SECRET = base64.b64decode("TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")
EXAMPLE_TARGET = "/api/v1/voicebiometrics/ws"
EXAMPLE_HEADERS = {
    "host": "audiohook.example.com",
    "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
    "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
    "audiohook-correlation-id": "e160e428-53e2-487c-977d-96989bf5c99d",
    "x-api-key": "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh",
    "signature": "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:",
    "signature-input": 'sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" '
                       '"audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";'
                       'nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430',
}


def check_example(headers: dict[str, str] = EXAMPLE_HEADERS, *, target: str = EXAMPLE_TARGET,
                  secret: bytes = EXAMPLE_SECRET, now: float = 1641013205) -> None:
    verify(headers, request_target=target, api_key=headers["x-api-key"], client_secret=secret, now=now)


def test_the_documentation_example_signature_verifies() -> None:
    check_example()


@pytest.mark.parametrize("change, why", [
    ({"headers": {**EXAMPLE_HEADERS, "audiohook-session-id": str(uuid.UUID(int=1))}}, "does not match"),
    ({"target": "/api/v1/other"}, "does not match"),
    ({"secret": b"not the secret"}, "does not match"),
    ({"now": 1641013200 + 60}, "older than"),
    ({"headers": {**EXAMPLE_HEADERS, "signature-input": EXAMPLE_HEADERS["signature-input"].replace(' "x-api-key"', "")}},
     "does not cover x-api-key"),
    ({"headers": {k: v for k, v in EXAMPLE_HEADERS.items() if not k.startswith("signature")}}, "not signed"),
    ({"headers": {**EXAMPLE_HEADERS, "x-api-key": "another key"}}, "keyid"),
])
def test_a_changed_request_does_not_verify(change: dict[str, Any], why: str) -> None:
    with pytest.raises(SignatureError, match=why):
        check_example(**change)


@pytest.fixture(scope="module")
def keyed(runtime: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("audiohook-access")
    key = f"cw_{secrets.token_urlsafe(16)}"
    spec = KeysFile(principals=[PrincipalSpec(role="integrator", name="genesys-t7", tenant="t7",
                                              keys=[KeySpec(sha256=digest_of(key), created=datetime.now(timezone.utc))])])
    save_keys_file(tmp / "keys.yaml", spec)
    rt = private_runtime(runtime, tmp, tmp / "keys.yaml", audiohook_client_secret=SECRET)
    try:
        with LiveServer(create_app(runtime=rt)) as served:
            yield {"key": key, "runtime": rt, "url": served.ws_url}
    finally:
        close_private(rt)


async def run(keyed: dict[str, Any], call: Any, seconds: float, **options: Any) -> tuple[str, list[dict[str, Any]]]:
    conversation, got = str(uuid.uuid4()), []
    n = int(seconds * call.rate)
    await play_call(keyed["url"], call.agent[:n], call.customer[:n], call.rate, call_id=conversation,
                    agent_id="ah-t7", speed=3.0, on_message=got.append, **options)
    return conversation, got


@pytest.mark.parametrize("options", [
    {"key": "cw_not-a-key", "client_secret": SECRET},
    {"client_secret": SECRET, "key": None},  # no X-API-KEY at all
    {},  # the right key, unsigned
    {"client_secret": base64.b64encode(b"another secret").decode()},
])
async def test_a_wrong_key_or_signature_is_refused_as_unauthorized(keyed, two_party_call, options):
    options = {"key": keyed["key"], **options}
    conversation, got = await run(keyed, two_party_call, 1.0, **options)
    assert [m["type"] for m in got] == ["disconnect", "closed"]
    assert got[0]["parameters"]["reason"] == "unauthorized"
    assert keyed["runtime"].store.get_call(conversation) is None


async def test_a_signed_call_is_stored_under_its_integrators_tenant(keyed, two_party_call):
    conversation, got = await run(keyed, two_party_call, 5.5, key=keyed["key"], client_secret=SECRET)
    assert [m["type"] for m in got][0] == "opened" and got[-1]["type"] == "closed"
    store = keyed["runtime"].store
    deadline = time.monotonic() + 60
    while (stored := store.get_call(conversation)) is None or stored.status == "live":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert stored.tenant == "t7" and stored.status == "completed"
    assert any(u["speaker"] == "agent" and u["text"] for u in store.list_utterances(conversation))


async def test_an_open_for_another_organisation_is_refused(keyed, two_party_call, monkeypatch):
    """The open's organizationId must be the one the signed Audiohook-Organization-Id header named."""
    from clients.platforms import audiohook

    real = audiohook.Session.send

    async def other_org(self: Any, kind: str, parameters: dict[str, Any]) -> int:
        if kind == "open":
            parameters = {**parameters, "organizationId": str(uuid.uuid4())}
        return await real(self, kind, parameters)

    monkeypatch.setattr(audiohook.Session, "send", other_org)
    conversation, got = await run(keyed, two_party_call, 1.0, key=keyed["key"], client_secret=SECRET)
    assert [m["type"] for m in got] == ["disconnect", "closed"]
    assert got[0]["parameters"]["reason"] == "unauthorized"
    assert keyed["runtime"].store.get_call(conversation) is None
