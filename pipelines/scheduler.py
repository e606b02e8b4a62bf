"""One recogniser queue for every leg of every call in the process.

The recogniser is the scarce resource, so all requests meet here. Finals are what gets stored and judged: they
are never dropped and always go first, in arrival order within a call, and fairly across calls: each call
names itself as the final's `owner`, a worker coming free serves the calls in turn (round robin) among those
with nothing decoding, and a call gets a second worker only while no other call waits (then one
final at a time, so whoever comes next waits little). A call that sends audio faster than real time so waits
for its own backlog, not everyone else. Partials only make the screen feel alive: each leg has at most one
waiting (a newer one replaces it), and one that waited too long is dropped. When the machine falls behind,
partials slow down and finals stay whole. Background work (the second pass over ended calls and audited
recordings) comes last, one window at a time, so a final that arrives waits at most for the window in hand.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from models.asr import ASRBackend, DecodeRequest, Transcript

SAMPLE_RATE = 16_000
# A call's own backlog counts this many finals toward "the recogniser is behind": more waiting in one call
# means that call sent faster than real time, and it waits for itself.
BACKLOG_COUNTED_PER_CALL = 2


@dataclass
class _Job:
    request: DecodeRequest
    future: asyncio.Future[Transcript | None]
    loop: asyncio.AbstractEventLoop
    owner: Hashable = None
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def audio_seconds(self) -> float:
        return self.request.audio.size / SAMPLE_RATE


@dataclass
class _Background:
    work: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    audio_seconds: float


@dataclass
class SchedulerStats:
    finals_done: int = 0
    partials_done: int = 0
    partials_dropped: int = 0
    finals_withdrawn: int = 0
    background_done: int = 0
    batches: int = 0
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        return self.busy_seconds / self.audio_seconds if self.audio_seconds else 0.0


class ASRScheduler:
    """Runs recognition requests on `workers` threads (the backend decodes that many at once), several
    requests at a time: the finals waiting when a worker comes free go together in one batch (up to
    `max_batch`), and so do the partials when no final waits. With more than one worker, partials never
    take the last free one, so a final that comes in starts at once. Background work is held to the same
    lanes while live finals keep coming (within `live_quiet_s`), and takes every worker once they stop: a
    machine that only audits uses all of it."""

    def __init__(self, backend: ASRBackend, partial_max_age_s: float = 1.5, max_batch: int = 4, workers: int = 1,
                 live_quiet_s: float = 5.0):
        self.backend = backend
        self.partial_max_age_s = partial_max_age_s
        self.max_batch = max_batch
        self.stats = SchedulerStats()
        self._finals: dict[Hashable, deque[_Job]] = {}  # by owner
        self._decoding_finals: Counter[Hashable] = Counter()  # finals in flight, by owner
        self._last_served: dict[Hashable, int] = {}  # the turn an owner was last served, while it has finals
        self._turns = 0
        self._partials: OrderedDict[Hashable, _Job] = OrderedDict()
        self._background: deque[_Background] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._workers = workers
        self._partial_lanes = max(1, workers - 1)
        self._decoding_partials = 0
        self._decoding_background = 0
        self.live_quiet_s = live_quiet_s
        self._last_final_at = float("-inf")
        self._threads = [threading.Thread(target=self._work, name=f"asr-worker-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    @property
    def queue_depth(self) -> int:
        with self._wake:
            return sum(map(len, self._finals.values())) + len(self._partials)

    @property
    def finals_waiting(self) -> int:
        with self._wake:
            return sum(map(len, self._finals.values()))

    @property
    def finals_behind(self) -> int:
        """Finals waiting, each call's counted up to BACKLOG_COUNTED_PER_CALL: how far behind the recogniser is
        for a call that streams in real time."""
        with self._wake:
            return sum(min(len(q), BACKLOG_COUNTED_PER_CALL) for q in self._finals.values())

    def final(self, request: DecodeRequest, owner: Hashable = None) -> asyncio.Future[Transcript | None]:
        """Queue a final of `owner` (a call); finals of one owner are decoded in the order they came."""
        job = self._job(request, owner)
        with self._wake:
            self._finals.setdefault(owner, deque()).append(job)
            self._last_final_at = time.monotonic()
            self._wake.notify()
        return job.future

    def withdraw(self, future: asyncio.Future[Transcript | None]) -> None:
        """Take back a final nobody needs any more (an utterance decoded early whose speaker went on): if it
        still waits it is dropped and resolves to None; if it is being decoded, its result is let go."""
        with self._wake:
            for owner, queue in self._finals.items():
                job = next((j for j in queue if j.future is future), None)
                if job is not None:
                    queue.remove(job)
                    if not queue:
                        del self._finals[owner]
                    self.stats.finals_withdrawn += 1
                    break
            else:
                job = None
        if job is not None:
            self._resolve(job, None)
        # A failure of a decode nobody waits for is not worth a warning.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def background(self, work: Callable[[], Any], audio_seconds: float = 0.0) -> asyncio.Future[Any]:
        """Run `work` (one window of a second pass: about a second of CPU) on a worker once no final or
        partial waits; its result or exception settles the returned future. `audio_seconds`, what it
        decodes, counts in the real-time factor."""
        loop = asyncio.get_running_loop()
        job = _Background(work, loop.create_future(), loop, audio_seconds)
        with self._wake:
            self._background.append(job)
            self._wake.notify()
        return job.future

    def partial(self, key: Hashable, request: DecodeRequest) -> asyncio.Future[Transcript | None]:
        """Queue a partial for `key` (a leg); a partial still waiting for the same key is superseded and
        resolves to None."""
        job = self._job(request)
        with self._wake:
            stale = self._partials.pop(key, None)
            self._partials[key] = job
            if stale is not None:
                self.stats.partials_dropped += 1
            self._wake.notify()
        if stale is not None:
            self._resolve(stale, None)
        return job.future

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    @staticmethod
    def _job(request: DecodeRequest, owner: Hashable = None) -> _Job:
        loop = asyncio.get_running_loop()
        return _Job(request, loop.create_future(), loop, owner)

    @staticmethod
    def _resolve(job: _Job | _Background, result: Any, error: BaseException | None = None) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        if not job.loop.is_closed():
            job.loop.call_soon_threadsafe(settle)

    def _take_finals(self) -> list[_Job]:
        """The next batch of finals, fairly across owners (see the module's docstring)."""
        waiting = sorted(self._finals, key=lambda owner: self._last_served.get(owner, -1))  # in turn
        idle = [owner for owner in waiting if not self._decoding_finals[owner]]
        if not idle:  # every waiting call is being served already: a second worker, one final
            batch = [self._finals[waiting[0]].popleft()]
        elif len(idle) == 1:  # one call waits: its finals together
            queue, options = self._finals[idle[0]], self._finals[idle[0]][0].request.options
            batch = []
            while queue and len(batch) < self.max_batch and queue[0].request.options == options:
                batch.append(queue.popleft())
        else:  # several calls wait: the oldest final of each, in turn
            options = self._finals[idle[0]][0].request.options
            heads = [owner for owner in idle if self._finals[owner][0].request.options == options][: self.max_batch]
            batch = [self._finals[owner].popleft() for owner in heads]
        self._turns += 1
        for job in batch:
            self._decoding_finals[job.owner] += 1
            self._last_served[job.owner] = self._turns
        for owner in {job.owner for job in batch}:
            if not self._finals[owner]:
                del self._finals[owner]
        return batch

    def _finished_finals(self, jobs: list[_Job]) -> None:
        for job in jobs:
            self._decoding_finals[job.owner] -= 1
            if not self._decoding_finals[job.owner]:
                del self._decoding_finals[job.owner]
                if job.owner not in self._finals:
                    self._last_served.pop(job.owner, None)

    def _take_partials(self) -> list[_Job]:
        now = time.monotonic()
        batch: list[_Job] = []
        for key in list(self._partials):
            job = self._partials[key]
            if now - job.queued_at > self.partial_max_age_s:
                del self._partials[key]
                self.stats.partials_dropped += 1
                self._resolve(job, None)
            elif len(batch) < self.max_batch and (not batch or job.request.options == batch[0].request.options):
                del self._partials[key]
                batch.append(job)
        return batch

    def _background_lanes(self) -> int:
        live = time.monotonic() - self._last_final_at < self.live_quiet_s
        return self._partial_lanes - self._decoding_partials if live else self._workers

    def _next(self) -> tuple[list[_Job], bool] | _Background | None:
        with self._wake:
            while True:
                if self._finals:
                    return self._take_finals(), True
                if self._decoding_partials < self._partial_lanes and (partials := self._take_partials()):
                    self._decoding_partials += 1
                    return partials, False
                if self._background and self._decoding_background < self._background_lanes():
                    self._decoding_background += 1
                    return self._background.popleft()
                if self._stopping:
                    return None
                # Background lanes open up when live finals stop: look again then.
                self._wake.wait(timeout=self.live_quiet_s if self._background else None)

    def _run(self, jobs: list[_Job]) -> list[Transcript | BaseException]:
        try:
            return list(self.backend.transcribe_batch([job.request for job in jobs]))
        except BaseException as exc:  # the caller decides; the worker must keep serving other calls
            if len(jobs) == 1:
                return [exc]
        # One utterance must not cost the others theirs: decode them one by one to find it.
        return [outcome for job in jobs for outcome in self._run([job])]

    def _run_background(self, job: _Background) -> None:
        started = time.monotonic()
        try:
            outcome, error = job.work(), None
        except BaseException as exc:  # the caller's to handle; the worker must keep serving
            outcome, error = None, exc
        with self._wake:
            self._decoding_background -= 1
            self.stats.background_done += 1
            self.stats.busy_seconds += time.monotonic() - started
            self.stats.audio_seconds += job.audio_seconds
            self._wake.notify()
        self._resolve(job, outcome, error)

    def _work(self) -> None:
        while (picked := self._next()) is not None:
            if isinstance(picked, _Background):
                self._run_background(picked)
                continue
            jobs, is_final = picked
            started = time.monotonic()
            outcomes = self._run(jobs)
            with self._wake:
                if is_final:
                    self._finished_finals(jobs)
                else:
                    self._decoding_partials -= 1
                self._wake.notify()
                self.stats.busy_seconds += time.monotonic() - started
                self.stats.batches += 1
            for job, outcome in zip(jobs, outcomes):
                if isinstance(outcome, BaseException):
                    self._resolve(job, None, outcome)
                    continue
                with self._wake:
                    self.stats.audio_seconds += job.audio_seconds
                    if is_final:
                        self.stats.finals_done += 1
                    else:
                        self.stats.partials_done += 1
                self._resolve(job, outcome)
