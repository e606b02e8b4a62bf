"""An AudioHook call in progress when callwatch shuts down (the server as `callwatch serve` runs it): the
call is ended `interrupted` with what was heard, and Genesys is told with a `disconnect` (reason `error`),
after which its close transaction is answered `closed` while the shutdown is still ending the call."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from typing import Any

from support.keyed_server import close_private, private_runtime
from support.live_server import free_port

from clients.platforms.audiohook import play_call
from service.access.keys import digest_of
from service.access.keysfile import KeysFile, KeySpec, PrincipalSpec, save_keys_file
from service.app import create_app
from service.serving import CallwatchServer, server_config


async def test_a_shutdown_mid_call_disconnects_it_and_keeps_it_interrupted(runtime, two_party_call, tmp_path):
    key = f"cw_{secrets.token_urlsafe(16)}"
    save_keys_file(tmp_path / "keys.yaml", KeysFile(principals=[
        PrincipalSpec(role="integrator", name="genesys", keys=[KeySpec(sha256=digest_of(key))])]))
    rt = private_runtime(runtime, tmp_path, tmp_path / "keys.yaml")
    app, port = create_app(runtime=rt), free_port()
    server = CallwatchServer(server_config(app, "127.0.0.1", port, rt.settings, log_level="warning"), app)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        call, conversation, got = two_party_call, str(uuid.uuid4()), []
        playing = asyncio.create_task(play_call(
            f"ws://127.0.0.1:{port}", call.agent, call.customer, call.rate, call_id=conversation,
            agent_id="ah-stop", key=key, on_message=got.append))
        await asyncio.sleep(6.0)  # the agent's first turn (0.5–4.7 s) heard
        server.should_exit = True
        await asyncio.wait_for(playing, 30)
        kinds = [m["type"] for m in got]
        assert kinds[0] == "opened" and kinds[-2:] == ["disconnect", "closed"], kinds
        assert got[-2]["parameters"]["reason"] == "error" and "restart" in got[-2]["parameters"]["info"]
        deadline = time.monotonic() + 30
        while rt.store.get_call(conversation).status == "live":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        stored: Any = rt.store.get_call(conversation)
        assert stored.status == "interrupted"
        assert any(u["speaker"] == "agent" and u["text"] for u in rt.store.list_utterances(conversation))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        close_private(rt)
