"""Fixtures for the agent screen: a light app around a fake runtime (no models), a uvicorn server for it, and
a real headless Chromium (Debian's, driven by Playwright; no browser download)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from feedkit import CHROMIUM, CHROMIUM_ARGS, OUTPUT, Dismissals, Server, feed_app


@pytest.fixture
def dismissals() -> Dismissals:
    return Dismissals()


@pytest.fixture
def hub(dismissals: Dismissals):
    from service.agent_feed.hub import AgentFeedHub

    return AgentFeedHub(on_dismiss=dismissals)


@pytest.fixture
def light_server(hub) -> Iterator[Server]:
    server = Server(feed_app(hub)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    # Module-scoped, not session: Playwright's sync API keeps an event loop running in this thread while it is
    # open, which async tests (pytest-asyncio) in later modules cannot share.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set CALLWATCH_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="callwatch-chromium-")
    with sync_playwright() as pw:
        # A persistent context is the only way to give Chromium a fresh user-data-dir of our own.
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1366, "height": 768}, locale="zh-CN",
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def new_page(browser):
    """Pages in the shared browser; each gets its own sessionStorage (a tab), closed after the test."""
    pages = []

    def make(width: int = 1366, height: int = 768):
        page = browser.new_page()
        page.set_viewport_size({"width": width, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.close()


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT
