"""One live call: audio legs in, partial and final transcripts and call events out, in order.

This is the streaming policy. It owns per-leg state (decoder, resampler, segmenter) and decides when to ask
for a partial and when for a final; the shared `ASRScheduler` decides when they run, and the `ASRBackend`
how. Results leave through one `ResultSink` with a per-call event id that only ever increases, so a
client can resume and a store can order them. One leg's finals leave in the order they were spoken, even
when the recogniser finishes a short one before a long one before it.

Results go through one queue per call: each is handed to the sink, then to every observer, before the next
is; what an observer emits while it handles one goes to the back of the queue. So an observer sees results
in the order they were produced (a customer's final before the emotion an observer computed from it), the
order a replay of the stored call feeds the rules engine in: live prompts and the stored report agree.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Protocol

import numpy as np

from models.asr import DecodeOptions, DecodeRequest, Transcript
from models.vad import SileroVAD
from pipelines.audio import AudioFrameError, ChannelResampler, decode_frame, speech_level_db
from pipelines.scheduler import ASRScheduler
from pipelines.second_pass import SecondPass, SpokenPiece
from pipelines.segmenter import ClosedUtterance, SegmenterOptions, UtteranceSegmenter
from pipelines.transcript_filter import TranscriptFilter
from wire.ingest import (
    AudioFormat,
    CallEventMessage,
    EndedResult,
    EventResult,
    FinalResult,
    PartialResult,
    StartedResult,
)

RATE = 16_000
log = logging.getLogger("callwatch.call")


@dataclass(frozen=True)
class StreamingOptions:
    segmenter: SegmenterOptions = field(default_factory=SegmenterOptions)
    final_decode: DecodeOptions = field(default_factory=DecodeOptions)
    partial_decode: DecodeOptions = field(
        default_factory=lambda: DecodeOptions(beam_size=1, temperatures=(0.0,), window_fallback=False))
    partial_interval_s: float = 0.6
    # A partial of less than this says nothing useful yet.
    min_partial_audio_s: float = 0.5
    partial_pause_s: float = 0.15
    hotwords: tuple[str, ...] = ()
    # Audits of recordings want finals only; partials are for people watching a live call.
    partials: bool = True
    # Live finals are for a call someone is on. An audited recording is heard once, by the second pass
    # over each whole leg, when all of it is in (pipelines/second_pass.py).
    live_finals: bool = True
    # Keep each leg's speech for the second pass after the call.
    keep_speech: bool = True
    # Decode an utterance's final as soon as its audio is settled (the speaker has been quiet for the
    # post-roll), not when the end silence is over: the final comes that much sooner (150 ms with the
    # defaults). Only while no final waits, since a speaker who goes on makes that decode wasted.
    early_finals: bool = True
    # How often time-based rules (dead air, long holds) are looked at, in audio seconds.
    tick_interval_s: float = 0.5


class ResultSink(Protocol):
    async def __call__(self, result: Any) -> None: ...


class CallObserver:
    """Follows a call and may add results of its own (emotion, prompts) through `call.emit`.

    Every method is a no-op here; an observer overrides what it needs. An observer that fails is logged
    and skipped: it must never cost the call its transcript."""

    async def on_result(self, result: Any, call: "CallSession") -> None:
        """Every result the call emits, after it reached the sink."""

    async def on_speech(self, speaker: str, start: float, end: float | None, call: "CallSession") -> None:
        """Voice activity: a speaker started (`end` None) or stopped talking."""

    async def on_tick(self, now: float, call: "CallSession") -> None:
        """The call's clock moved on by `tick_interval_s`."""

    async def on_finish(self, call: "CallSession") -> None:
        """The call ended; its last finals and `ended` are out."""


class FrameError(ValueError):
    """A binary frame that could not be used (in whole or in part); the call goes on."""


@dataclass
class _EarlyFinal:
    """A final decoded before its utterance closed; it stands if the utterance closes as it was then."""

    utterance: ClosedUtterance
    transcript: asyncio.Future[Transcript | None]

    def stands_for(self, closed: ClosedUtterance) -> bool:
        return (self.utterance.index, self.utterance.start, self.utterance.audio.size) == (
            closed.index, closed.start, closed.audio.size)


@dataclass
class _Leg:
    number: int
    speaker: str
    segmenter: UtteranceSegmenter
    resampler: ChannelResampler
    last_partial_at: float = -1.0
    closed_through: int = -1  # highest utterance index closed: partials for it are stale
    # The delivery of this leg's latest final: the next one waits for it, so that a short utterance decoded
    # beside a long one does not overtake it.
    last_final: asyncio.Future[None] | None = None
    early: _EarlyFinal | None = None
    speech: list[SpokenPiece] = field(default_factory=list)


@dataclass
class _Queued:
    result: Any
    done: asyncio.Future[Any] | None  # None: emitted by an observer, nobody waits for it
    cause: Any  # the result whose handling emitted it (None: from outside)


class CallSession:
    def __init__(
        self,
        call_id: str,
        audio_format: AudioFormat,
        *,
        scheduler: ASRScheduler,
        vad: SileroVAD,
        transcript_filter: TranscriptFilter,
        options: StreamingOptions,
        sink: ResultSink,
        observers: list[CallObserver] | None = None,
        second_pass: SecondPass | None = None,
    ):
        if not options.live_finals and (second_pass is None or not options.keep_speech):
            raise ValueError("a call without live finals is heard by the second pass: it needs one, and its speech")
        self.call_id = call_id
        self.audio_format = audio_format
        self._scheduler = scheduler
        self._filter = transcript_filter
        self._options = options
        self._sink = sink
        self._observers = observers or []
        self._second_pass = second_pass
        self._event_id = 0
        self._last_tick = 0.0
        # The audio of recent finals, for observers that listen to the voice (arousal); bounded.
        self._recent_audio: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queue: deque[_Queued] = deque()
        self._handler: asyncio.Task[None] | None = None
        self._cause: Any = None
        self._finals: set[asyncio.Task[None]] = set()
        self._partials: set[asyncio.Task[None]] = set()
        self.utterance_count = 0
        self.ended = False
        self.legs = [
            _Leg(
                number=i,
                speaker=speaker,
                segmenter=UtteranceSegmenter(vad.stream(), options.segmenter),
                resampler=ChannelResampler(audio_format.sample_rate),
            )
            for i, speaker in enumerate(audio_format.leg_speakers())
        ]

    @property
    def now(self) -> float:
        """The call's clock: seconds of audio heard on its furthest leg."""
        return max(leg.segmenter.now for leg in self.legs)

    async def emit(self, result: Any) -> Any:
        """Queue a result for the sink and then the observers (see the module's docstring). Returns it stamped
        with its event id once every observer has seen it; a result an observer emits is queued behind the
        one it is handling and returned as given."""
        if self._handler is not None and asyncio.current_task() is self._handler:
            self._queue.append(_Queued(result, None, self._cause))
            return result
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(result, done, None))
        if self._handler is None:
            self._handler = asyncio.get_running_loop().create_task(self._handle_queue())
        # A caller that gives up waiting (a cancelled task) does not take its result out of the call.
        return await asyncio.shield(done)

    @property
    def cause(self) -> Any:
        """While a result is being handled: the result that began its chain (a final, for the emotion and the
        prompts its observers raised from it; the result itself when it began none)."""
        return self._cause

    async def _handle_queue(self) -> None:
        try:
            while self._queue:
                item = self._queue.popleft()
                self._event_id += 1
                stamped = item.result.model_copy(update={"call_id": self.call_id, "event_id": self._event_id})
                self._cause = item.cause or stamped
                try:
                    await self._sink(stamped)
                except Exception as exc:
                    if item.done is None:
                        log.exception("result %s could not be delivered", stamped.type, extra={"call_id": self.call_id})
                    elif not item.done.done():
                        item.done.set_exception(exc)
                    continue
                await self._notify("on_result", stamped, self)
                if item.done is not None and not item.done.done():
                    item.done.set_result(stamped)
        finally:
            self._handler, self._cause = None, None

    async def _notify(self, method: str, *args: Any) -> None:
        for observer in self._observers:
            try:
                await getattr(observer, method)(*args)
            except Exception:
                log.exception("observer %s.%s failed", type(observer).__name__, method, extra={"call_id": self.call_id})

    def utterance_audio(self, utterance_id: str) -> np.ndarray | None:
        """16 kHz audio of a recent final (the last few per call are kept)."""
        return self._recent_audio.get(utterance_id)

    async def start(self) -> None:
        await self.emit(StartedResult(call_id=self.call_id, event_id=0, legs=[leg.speaker for leg in self.legs]))

    async def audio(self, frame: bytes) -> None:
        """Take one binary frame. Raises FrameError after keeping whatever whole samples it held."""
        fmt = self.audio_format
        leg: int | None = None
        if fmt.layout == "two_legs":
            if not frame:
                raise FrameError("empty binary frame: expected a leg byte (0 agent, 1 customer) and audio")
            if frame[0] > 1:
                raise FrameError(f"unknown leg byte {frame[0]}: 0 is the agent leg, 1 the customer leg")
            leg, frame = frame[0], frame[1:]
        try:
            samples = decode_frame(frame, fmt.encoding, fmt.channels)
        except AudioFrameError as exc:
            await self.samples(exc.usable, leg)
            raise FrameError(str(exc)) from exc
        await self.samples(samples, leg)

    async def samples(self, samples: np.ndarray, leg: int | None = None) -> None:
        """Take decoded audio, (frames, channels) float32 at the call's declared rate; with `two_legs`,
        `leg` says whose it is."""
        targets = self.legs if leg is None else [self.legs[leg]]
        for channel, target in enumerate(targets):
            await self._feed_leg(target, target.resampler(samples[:, channel]))
        if self.now - self._last_tick >= self._options.tick_interval_s:
            self._last_tick = self.now
            await self._notify("on_tick", self.now, self)

    async def _feed_leg(self, leg: _Leg, audio16k: np.ndarray) -> None:
        seg = leg.segmenter
        was_open, open_index = seg.is_open, seg.open_index
        for closed in seg.feed(audio16k):
            self._closed(leg, closed)
            await self._notify("on_speech", leg.speaker, closed.start, closed.end, self)
        if seg.is_open and (not was_open or seg.open_index != open_index):
            await self._notify("on_speech", leg.speaker, seg.open_start, None, self)
        if self._options.live_finals and self._options.early_finals:
            self._decode_early(leg)
        if (
            self._options.partials
            and seg.is_open
            # Once the speaker pauses the final may be a moment away; a partial now would only make the
            # final wait behind it in the recogniser queue.
            and seg.trailing_silence < self._options.partial_pause_s
            and seg.now - seg.open_start >= self._options.min_partial_audio_s
            and seg.now - leg.last_partial_at >= self._options.partial_interval_s
        ):
            leg.last_partial_at = seg.now
            self._submit_partial(leg)

    def _decode_early(self, leg: _Leg) -> None:
        seg = leg.segmenter
        if leg.early is not None:
            if seg.is_open and seg.open_index == leg.early.utterance.index and seg.settled:
                return
            # The speaker went on: the early decode heard only part of the utterance.
            self._scheduler.withdraw(leg.early.transcript)
            leg.early = None
        if seg.settled and not self._scheduler.finals_waiting and (pending := seg.pending_close()) is not None:
            leg.early = _EarlyFinal(pending, self._request_final(pending))

    def _request_final(self, utterance: ClosedUtterance) -> asyncio.Future[Transcript | None]:
        request = DecodeRequest(utterance.audio, self._options.final_decode, self._options.hotwords)
        return self._scheduler.final(request, owner=self.call_id)

    def _submit_partial(self, leg: _Leg) -> None:
        seg = leg.segmenter
        index, start, audio = seg.open_index, seg.open_start, seg.open_audio()
        request = DecodeRequest(audio, self._options.partial_decode, self._options.hotwords)
        future = self._scheduler.partial((self.call_id, leg.number), request)

        async def deliver() -> None:
            transcript = await future
            if transcript is None or index <= leg.closed_through or self.ended:
                return
            text = self._filter.clean(transcript.text, final=False)
            if text:
                await self.emit(
                    PartialResult(
                        call_id=self.call_id,
                        event_id=0,
                        utterance_id=f"{leg.speaker}-{index}",
                        speaker=leg.speaker,
                        start=round(start, 3),
                        text=text,
                    )
                )

        self._track(self._partials, deliver())

    def speech(self) -> list[list[SpokenPiece]]:
        """Each leg's utterances with their audio, for the second pass (empty unless `keep_speech`)."""
        return [list(leg.speech) for leg in self.legs]

    def _closed(self, leg: _Leg, closed: ClosedUtterance) -> None:
        leg.closed_through = max(leg.closed_through, closed.index)
        if self._options.keep_speech:
            leg.speech.append(SpokenPiece.of(f"{leg.speaker}-{closed.index}", leg.speaker, closed.start, closed.end,
                                             closed.audio))
        if self._options.live_finals:
            self._submit_final(leg, closed)

    def _submit_final(self, leg: _Leg, closed: ClosedUtterance) -> None:
        early, leg.early = leg.early, None
        if early is not None and early.stands_for(closed):
            future = early.transcript
        else:
            if early is not None:
                self._scheduler.withdraw(early.transcript)
            future = self._request_final(closed)
        previous = leg.last_final

        async def deliver() -> None:
            transcript = await future
            if previous is not None:
                await asyncio.wait([previous])  # its outcome is its own; only its turn matters here
            text = self._filter.clean(transcript.text, final=True) if transcript else ""
            if text:
                await self._emit_final(f"{leg.speaker}-{closed.index}", leg.speaker, closed.start, closed.end,
                                       closed.audio, text)

        leg.last_final = self._track(self._finals, deliver())

    async def _emit_final(self, utterance_id: str, speaker: str, start: float, end: float, audio: np.ndarray,
                          text: str) -> None:
        self.utterance_count += 1
        self._recent_audio[utterance_id] = audio
        while len(self._recent_audio) > 8:
            self._recent_audio.popitem(last=False)
        await self.emit(
            FinalResult(
                call_id=self.call_id,
                event_id=0,
                utterance_id=utterance_id,
                speaker=speaker,
                start=round(start, 3),
                end=round(end, 3),
                text=text,
                speaker_uncertain=speaker == "unknown",
                level_db=speech_level_db(audio),
            )
        )

    @staticmethod
    def _track(tasks: set[asyncio.Task[None]], coro: Awaitable[None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    async def event(self, message: CallEventMessage) -> None:
        t = message.t if message.t is not None else self.now
        await self.emit(
            EventResult(call_id=self.call_id, event_id=0, event=message.event, t=round(t, 3),
                        by=message.by, target=message.target)
        )

    async def finish(self, status: str) -> EndedResult:
        """Close open utterances, wait for every final, and report the end. Safe to call once."""
        for leg in self.legs:
            tail = leg.resampler(np.zeros(0, dtype=np.float32), last=True)
            for closed in leg.segmenter.feed(tail) + leg.segmenter.flush():
                self._closed(leg, closed)
                await self._notify("on_speech", leg.speaker, closed.start, closed.end, self)
        self.ended = True
        for task in list(self._partials):
            task.cancel()
        if self._finals:
            await asyncio.gather(*self._finals, return_exceptions=True)
        if not self._options.live_finals:
            assert self._second_pass is not None
            for heard in await self._second_pass.call(self.speech()):
                piece = heard.piece
                if heard.text:
                    await self._emit_final(piece.utterance_id, piece.speaker, piece.start, piece.end, piece.audio,
                                           heard.text)
        ended = await self.emit(
            EndedResult(
                call_id=self.call_id, event_id=0, status=status,
                duration=round(self.now, 3), utterances=self.utterance_count,
            )
        )
        await self._notify("on_finish", self)
        return ended
