"""The scheduler's policy, with a stand-in recogniser so the order and grouping of work is observable.
The real recogniser's batching is tested in test_asr_real.py."""

import asyncio
import threading

import numpy as np

from models.asr import DecodeOptions, DecodeRequest, Transcript
from pipelines.scheduler import ASRScheduler

GREEDY = DecodeOptions(beam_size=1, temperatures=(0.0,))


def request(name: str, options: DecodeOptions = DecodeOptions()) -> DecodeRequest:
    """A request the stand-in answers with its own name (carried as a hotword)."""
    return DecodeRequest(np.zeros(16000, np.float32), options, hotwords=(name,))


class GatedRecogniser:
    """Holds every batch until released; records the batches in the order they ran."""

    name = "gated"

    def __init__(self):
        self.batches: list[list[str]] = []
        self.started: list[list[str]] = []
        self.release = threading.Event()

    def transcribe_batch(self, requests):
        names = [r.hotwords[0] for r in requests]
        self.started.append(names)
        self.release.wait(5)
        if "broken" in names:
            raise RuntimeError("decoder exploded")
        self.batches.append(names)
        return [Transcript(name) for name in names]


async def started(scheduler: ASRScheduler, name: str):
    """Queue a final and give the worker time to pick it up, so what follows queues behind it."""
    future = scheduler.final(request(name))
    await asyncio.sleep(0.05)
    return future


async def test_finals_go_before_partials_and_a_newer_partial_supersedes_an_older():
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend, partial_max_age_s=10, max_batch=1)
    try:
        blocker = await started(scheduler, "f0")
        p_old = scheduler.partial("leg-a", request("p-old", GREEDY))
        p_new = scheduler.partial("leg-a", request("p-new", GREEDY))
        p_other = scheduler.partial("leg-b", request("p-b", GREEDY))
        f1 = scheduler.final(request("f1"))
        backend.release.set()
        results = await asyncio.gather(blocker, p_old, p_new, p_other, f1)
    finally:
        scheduler.close()
    assert results[1] is None  # superseded
    assert [r.text for r in results if r is not None] == ["f0", "p-new", "p-b", "f1"]
    assert backend.batches == [["f0"], ["f1"], ["p-new"], ["p-b"]]
    assert scheduler.stats.partials_dropped == 1
    assert scheduler.stats.finals_done == 2


async def test_finals_that_wait_together_are_decoded_together_up_to_the_batch_limit():
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend, partial_max_age_s=10, max_batch=3)
    try:
        blocker = await started(scheduler, "f0")
        finals = [scheduler.final(request(f"f{i}")) for i in range(1, 5)]
        partials = [scheduler.partial(f"leg-{i}", request(f"p{i}", GREEDY)) for i in range(2)]
        backend.release.set()
        results = await asyncio.gather(blocker, *finals, *partials)
    finally:
        scheduler.close()
    assert [r.text for r in results] == ["f0", "f1", "f2", "f3", "f4", "p0", "p1"]
    # Finals first and in arrival order; partials (decoded another way) never share a batch with them.
    assert backend.batches == [["f0"], ["f1", "f2", "f3"], ["f4"], ["p0", "p1"]]
    assert scheduler.stats.batches == 4


async def test_a_partial_that_waited_too_long_is_dropped_but_finals_never_are():
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend, partial_max_age_s=0.05, max_batch=2)
    try:
        blocker = await started(scheduler, "f0")
        stale = scheduler.partial("leg-a", request("p", GREEDY))
        finals = [scheduler.final(request(f"f{i}")) for i in range(1, 6)]
        await asyncio.sleep(0.2)
        backend.release.set()
        done = await asyncio.gather(blocker, stale, *finals)
    finally:
        scheduler.close()
    assert done[1] is None
    assert [t.text for t in done[2:]] == ["f1", "f2", "f3", "f4", "f5"]
    assert all("p" not in batch for batch in backend.batches)


async def test_a_failing_utterance_fails_alone_and_the_worker_goes_on():
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend, max_batch=4)
    try:
        blocker = await started(scheduler, "f0")
        failed = scheduler.final(request("broken"))
        ok = scheduler.final(request("still here"))
        backend.release.set()
        results = await asyncio.gather(blocker, failed, ok, return_exceptions=True)
        later = await scheduler.final(request("later"))
    finally:
        scheduler.close()
    assert isinstance(results[1], RuntimeError)
    assert results[2].text == "still here"
    assert later.text == "later"


async def test_with_two_workers_partials_leave_one_free_so_a_final_starts_at_once():
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend, partial_max_age_s=10, max_batch=1, workers=2)
    try:
        p_a = scheduler.partial("leg-a", request("p-a", GREEDY))
        await asyncio.sleep(0.05)
        p_b = scheduler.partial("leg-b", request("p-b", GREEDY))
        await asyncio.sleep(0.05)
        assert backend.started == [["p-a"]]  # p-b waits: the other worker is kept for finals
        final = scheduler.final(request("f"))
        await asyncio.sleep(0.05)
        assert backend.started == [["p-a"], ["f"]]  # the final did not wait behind p-a
        backend.release.set()
        results = await asyncio.gather(p_a, p_b, final)
    finally:
        scheduler.close()
    assert [r.text for r in results] == ["p-a", "p-b", "f"]
    assert scheduler.stats.finals_done == 1 and scheduler.stats.partials_done == 2


async def test_background_work_waits_for_finals_and_partials():
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend, partial_max_age_s=10, max_batch=1)
    order: list[str] = []
    try:
        blocker = await started(scheduler, "f0")
        background = scheduler.background(lambda: order.append("background") or "done")
        partial = scheduler.partial("leg-a", request("p", GREEDY))
        final = scheduler.final(request("f1"))
        backend.release.set()
        assert await background == "done"
        await asyncio.gather(blocker, partial, final)
    finally:
        scheduler.close()
    assert backend.batches == [["f0"], ["f1"], ["p"]]
    assert order == ["background"]


async def test_background_keeps_a_worker_free_while_live_finals_come_and_takes_all_once_they_stop():
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend, workers=2, live_quiet_s=0.3)
    running, most = 0, 0
    lock = threading.Lock()

    def window():
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.1)
        with lock:
            running -= 1

    try:
        backend.release.set()
        await scheduler.final(request("live"))
        await asyncio.gather(*(scheduler.background(window) for _ in range(4)))
        assert most == 1  # a live final came within live_quiet_s: one worker stays free for the next
        await asyncio.sleep(0.4)
        most = 0
        await asyncio.gather(*(scheduler.background(window) for _ in range(4)))
        assert most == 2
    finally:
        scheduler.close()


async def test_a_failing_background_job_fails_its_future_and_the_worker_goes_on():
    backend = GatedRecogniser()
    backend.release.set()
    scheduler = ASRScheduler(backend)
    try:
        failing = scheduler.background(lambda: 1 / 0)
        try:
            await failing
            raise AssertionError("the job's error should reach its future")
        except ZeroDivisionError:
            pass
        assert await scheduler.final(request("after")) == Transcript("after")
    finally:
        scheduler.close()


async def test_a_call_with_a_backlog_does_not_make_another_call_wait_behind_it():
    """One call sent a minute of speech at once; another streams in real time. The second call's final is
    decoded as soon as a worker comes free, not after the first call's backlog."""
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend, partial_max_age_s=10, max_batch=4, workers=2)
    try:
        with scheduler._wake:  # the six arrive at once: no worker picks any before the last is queued
            flood = [scheduler.final(request(f"f{i}"), owner="flood") for i in range(1, 7)]
        await asyncio.sleep(0.05)
        assert backend.started == [["f1", "f2", "f3", "f4"], ["f5"]]  # alone, it may use both workers
        assert (scheduler.finals_waiting, scheduler.finals_behind) == (1, 1)
        steady = scheduler.final(request("r1"), owner="steady")
        assert (scheduler.finals_waiting, scheduler.finals_behind) == (2, 2)
        backend.release.set()
        results = await asyncio.gather(*flood, steady)
    finally:
        scheduler.close()
    assert [r.text for r in results] == ["f1", "f2", "f3", "f4", "f5", "f6", "r1"]
    # Both workers come free together: the steady call goes first, in its own batch or at the head of one.
    assert [name for batch in backend.started[2:] for name in batch] == ["r1", "f6"]


async def test_a_backlog_counts_two_finals_toward_the_recogniser_being_behind():
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend, partial_max_age_s=10, max_batch=1, workers=1)
    try:
        blocker = await started(scheduler, "f0")
        queued = [scheduler.final(request(f"b{i}"), owner="burst") for i in range(5)]
        queued.append(scheduler.final(request("s"), owner="steady"))
        assert (scheduler.finals_waiting, scheduler.finals_behind) == (6, 3)
        backend.release.set()
        await asyncio.gather(blocker, *queued)
    finally:
        scheduler.close()
    # One worker, batches of one: the steady call's final comes second, not after the burst.
    assert backend.batches[:3] == [["f0"], ["b0"], ["s"]]


async def test_a_withdrawn_final_is_not_decoded_if_it_still_waits():
    backend = GatedRecogniser()
    scheduler = ASRScheduler(backend)
    try:
        blocker = await started(scheduler, "f0")
        early = scheduler.final(request("early"), owner="c1")
        kept = scheduler.final(request("kept"), owner="c1")
        scheduler.withdraw(early)
        backend.release.set()
        done = await asyncio.gather(blocker, early, kept)
    finally:
        scheduler.close()
    assert done[1] is None and done[2].text == "kept"
    assert all("early" not in batch for batch in backend.batches)
    assert scheduler.stats.finals_withdrawn == 1
