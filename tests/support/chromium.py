"""Debian's Chromium, headless, driven by Playwright (no browser download), for the tests that open the pages:
`browser`, one per test module, and `new_page`, a page in a browser context of its own each time, so each
person in a test (a reviewer, an agent, a supervisor) has its own cookie.

Use them by importing the fixtures into a conftest.py or a test module (tests/qa/conftest.py does)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
# No sandbox: the tests run as root in CI's container. Autoplay without a gesture: a page's seek may start the
# player from a script (the review page plays from a clicked line), which headless Chromium would otherwise block.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"]
TIMEOUT_MS = 20_000  # for anything a page waits on the server for
VIEWPORT = {"width": 1366, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module-scoped, not session: Playwright's sync API keeps an event loop running in this thread while it is
    # open, which async tests (pytest-asyncio) in later modules cannot share.
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    """Opens a page in a browser context of its own (its own cookie); `page.js_errors` collects the page's
    uncaught errors. The contexts close after the test."""
    contexts: list[Any] = []

    def open_page() -> Any:
        context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.js_errors = []
        page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
        return page

    yield open_page
    for context in contexts:
        context.close()
