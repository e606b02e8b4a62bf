"""Judging a timeline off the event loop, within a time budget, stopped when nobody waits for it any more.

The rules engine is pure Python: run on the event loop, a long replay stops every call, `/healthz` and the
shutdown with it. Here it runs in a worker thread; the replay asks `stop` between steps, so a budget that is
spent or a caller that went away (a request the client abandoned, a task cancelled at shutdown) ends the
thread's work too, not just the wait for it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

from rules.engine import ReplayStopped, RuleBook, audit_timeline
from rules.findings import CallReport
from rules.timeline import CallTimeline


class JudgingOverBudget(RuntimeError):
    """The replay did not finish within its budget."""


async def judge_off_loop(timeline: CallTimeline, book: RuleBook, budget_s: float,
                         gone: Callable[[], Awaitable[bool]] | None = None) -> CallReport:
    """The report on `timeline`. Raises JudgingOverBudget after `budget_s` seconds; when `gone` (polled a few
    times a second) says the caller left, the replay is stopped and asyncio.CancelledError raised."""
    stopped = threading.Event()
    deadline = time.monotonic() + budget_s

    def stop() -> bool:
        return stopped.is_set() or time.monotonic() > deadline

    work = asyncio.ensure_future(asyncio.to_thread(audit_timeline, timeline, book, stop))
    try:
        while not work.done():
            await asyncio.wait({work}, timeout=0.25)
            if not work.done() and gone is not None and await gone():
                raise asyncio.CancelledError("the caller went away")
        return work.result()
    except ReplayStopped:
        raise JudgingOverBudget(f"judging {timeline.call_id} took over {budget_s:g} s and was stopped") from None
    finally:
        stopped.set()
        if not work.done():
            # The thread sees `stopped` within a few steps; nothing waits for what it returns.
            work.cancel()
