"""One recogniser queue for every leg of every call in the process.

The recogniser is the scarce resource (two cores decode about one utterance at a time), so all requests
meet here. Finals are what gets stored and judged: they are never dropped and always go first, in arrival
order. Partials only make the screen feel alive: each leg has at most one waiting (a newer one replaces it),
and one that waited too long is dropped. When the machine falls behind, partials slow down and finals
stay whole.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable, Hashable

from models.asr import Transcript


@dataclass
class _Job:
    run: Callable[[], Transcript]
    future: asyncio.Future[Transcript | None]
    loop: asyncio.AbstractEventLoop
    audio_seconds: float
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class SchedulerStats:
    finals_done: int = 0
    partials_done: int = 0
    partials_dropped: int = 0
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        return self.busy_seconds / self.audio_seconds if self.audio_seconds else 0.0


class ASRScheduler:
    def __init__(self, partial_max_age_s: float = 1.5):
        self.partial_max_age_s = partial_max_age_s
        self.stats = SchedulerStats()
        self._finals: deque[_Job] = deque()
        self._partials: OrderedDict[Hashable, _Job] = OrderedDict()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="asr-scheduler", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        with self._wake:
            return len(self._finals) + len(self._partials)

    def final(self, run: Callable[[], Transcript], audio_seconds: float) -> asyncio.Future[Transcript | None]:
        job = self._job(run, audio_seconds)
        with self._wake:
            self._finals.append(job)
            self._wake.notify()
        return job.future

    def partial(
        self, key: Hashable, run: Callable[[], Transcript], audio_seconds: float
    ) -> asyncio.Future[Transcript | None]:
        """Queue a partial for `key` (a leg); a partial still waiting for the same key is superseded and
        resolves to None."""
        job = self._job(run, audio_seconds)
        with self._wake:
            stale = self._partials.pop(key, None)
            self._partials[key] = job
            self._wake.notify()
        if stale is not None:
            self._resolve(stale, None)
            self.stats.partials_dropped += 1
        return job.future

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._thread.join(timeout=30)

    @staticmethod
    def _job(run: Callable[[], Transcript], audio_seconds: float) -> _Job:
        loop = asyncio.get_running_loop()
        return _Job(run, loop.create_future(), loop, audio_seconds)

    @staticmethod
    def _resolve(job: _Job, result: Transcript | None, error: BaseException | None = None) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        if not job.loop.is_closed():
            job.loop.call_soon_threadsafe(settle)

    def _next(self) -> tuple[_Job, bool] | None:
        with self._wake:
            while True:
                if self._finals:
                    return self._finals.popleft(), True
                now = time.monotonic()
                while self._partials:
                    _, job = self._partials.popitem(last=False)
                    if now - job.queued_at <= self.partial_max_age_s:
                        return job, False
                    self.stats.partials_dropped += 1
                    self._resolve(job, None)
                if self._stopping:
                    return None
                self._wake.wait()

    def _work(self) -> None:
        while (picked := self._next()) is not None:
            job, is_final = picked
            started = time.monotonic()
            try:
                result = job.run()
            except BaseException as exc:  # the caller decides; the worker must keep serving other calls
                self._resolve(job, None, exc)
                continue
            self.stats.busy_seconds += time.monotonic() - started
            self.stats.audio_seconds += job.audio_seconds
            if is_final:
                self.stats.finals_done += 1
            else:
                self.stats.partials_done += 1
            self._resolve(job, result)
