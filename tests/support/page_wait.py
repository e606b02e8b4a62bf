"""Waiting on a page in the browser tests without eval: the pages' Content-Security-Policy forbids it."""

from __future__ import annotations

import time
from typing import Any


def wait_until(page: Any, expression: str, timeout: float = 10.0) -> Any:
    """Poll a JavaScript expression until it is truthy. (Playwright's wait_for_function evaluates a string
    with eval once it has to poll, which the pages' Content-Security-Policy rightly refuses; page.evaluate is
    not subject to it.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(f"() => ({expression})")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {expression}")
        time.sleep(0.05)
