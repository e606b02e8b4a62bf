"""The app's state (service/app_state.py) around a stand-in runtime, for the tests that serve the real app
without its lifespan: the lifespan would load the models these tests do without."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def install_stand_in(app: FastAPI, runtime: Any) -> FastAPI:
    """`app` with the state its start-up builds (service.app.build_state: the key ring, the audit queue, ...)
    around `runtime`, which carries what the routes served read of a runtime (settings, store, rules; no models).
    Every route's dependencies find it, and so do the helpers handed the request (service/qa/routing.py's)."""
    from service.app import build_state
    from service.app_state import install

    install(app, build_state(runtime))
    return app
