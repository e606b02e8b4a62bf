"""The scheduler's policy, with a stand-in recogniser so the order of work is observable."""

import asyncio
import threading

from models.asr import Transcript
from pipelines.scheduler import ASRScheduler


class Gate:
    """A recogniser job that waits until released, recording the order jobs ran in."""

    def __init__(self, log):
        self.log = log
        self.release = threading.Event()

    def job(self, name):
        def run():
            self.release.wait(5)
            self.log.append(name)
            return Transcript(name)

        return run


async def test_finals_go_before_partials_and_a_newer_partial_supersedes_an_older():
    log: list[str] = []
    gate = Gate(log)
    scheduler = ASRScheduler(partial_max_age_s=10)
    try:
        blocker = scheduler.final(gate.job("f0"), 1.0)
        await asyncio.sleep(0.05)  # f0 is running; the rest queue behind it
        p_old = scheduler.partial("leg-a", gate.job("p-old"), 1.0)
        p_new = scheduler.partial("leg-a", gate.job("p-new"), 1.0)
        p_other = scheduler.partial("leg-b", gate.job("p-b"), 1.0)
        f1 = scheduler.final(gate.job("f1"), 1.0)
        gate.release.set()
        results = await asyncio.gather(blocker, p_old, p_new, p_other, f1)
    finally:
        scheduler.close()
    assert results[1] is None  # superseded
    assert log == ["f0", "f1", "p-new", "p-b"]
    assert scheduler.stats.partials_dropped == 1
    assert scheduler.stats.finals_done == 2


async def test_a_partial_that_waited_too_long_is_dropped_but_finals_never_are():
    log: list[str] = []
    gate = Gate(log)
    scheduler = ASRScheduler(partial_max_age_s=0.05)
    try:
        blocker = scheduler.final(gate.job("f0"), 1.0)
        await asyncio.sleep(0.02)
        stale = scheduler.partial("leg-a", gate.job("p"), 1.0)
        finals = [scheduler.final(gate.job(f"f{i}"), 1.0) for i in range(1, 6)]
        await asyncio.sleep(0.2)
        gate.release.set()
        done = await asyncio.gather(blocker, stale, *finals)
    finally:
        scheduler.close()
    assert done[1] is None
    assert [t.text for t in done[2:]] == ["f1", "f2", "f3", "f4", "f5"]
    assert "p" not in log


async def test_a_failing_job_reports_its_error_and_the_worker_goes_on():
    scheduler = ASRScheduler()

    def broken():
        raise RuntimeError("decoder exploded")

    try:
        failed = scheduler.final(broken, 1.0)
        ok = scheduler.final(lambda: Transcript("still here"), 1.0)
        results = await asyncio.gather(failed, ok, return_exceptions=True)
    finally:
        scheduler.close()
    assert isinstance(results[0], RuntimeError)
    assert results[1].text == "still here"
