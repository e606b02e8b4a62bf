"""Prometheus metrics, on a registry of the runtime's own (never the library's global one).

Events are counted where they happen (ingest: audio in, calls started, refused and ended, errors sent,
prompt and final latency). What already has a source of truth is read from it at scrape time instead of
being mirrored: live calls, the recogniser's queue and work, audit jobs by state, each through a callable
the runtime hands over (`Readings`), so this module knows nothing of the runtime. docs/operations.md lists
every metric.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from service.persistence.audit_jobs import AuditJobs

if TYPE_CHECKING:
    from pipelines.scheduler import ASRScheduler
    from service.persistence.call_store import CallStore

log = logging.getLogger("callwatch.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
AUDIT_JOB_STATES = ("queued", "running", "done", "skipped", "failed")
# Seconds from the end of speech to the message leaving the server, on the call's clock. Finals of short
# turns land around 1 s on a 2-core CPU; the tail buckets show a recogniser that has fallen behind.
LATENCY_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)
# How long a scrape waits for a database that is away (a restart) before it leaves out the audit job counts:
# well inside the scrape's own 10 s (service/health.py), so the rest of the scrape still comes back.
AUDIT_JOBS_WAIT_S = 5.0


@dataclass(frozen=True)
class Readings:
    """Where a scrape reads what already has a source of truth; each is read once per scrape."""

    live_calls: Callable[[], int]
    scheduler: ASRScheduler
    audit_jobs: Callable[[], dict[str, int] | None]  # by state; None when the database does not answer
    max_live_calls: int
    max_asr_queue_depth: int
    asr: tuple[str, str, str]  # model, device, compute type: the `callwatch_info` labels


class ServiceMetrics:
    """Everything /metrics shows, for one runtime (one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        # `connector`: how the call arrived: `ingest` (protocol v1) or a platform's connector (docs/connectors.md).
        self.audio_received_seconds = Counter(
            "callwatch_audio_received_seconds", "Seconds of call audio received on live links (the calls' clocks)",
            ["connector"], registry=r)
        self.second_pass_skipped = Counter(
            "callwatch_second_pass_skipped", "Ended calls that kept their live transcript because the calls waiting "
            "for the second pass already held CALLWATCH_SECOND_PASS_BACKLOG_S of speech", registry=r)
        self.ingest_paced_seconds = Counter(
            "callwatch_ingest_paced_seconds", "Seconds the ingest held back reading live sockets whose audio ran ahead "
            "of real time by more than CALLWATCH_LIVE_MAX_LEAD_S", registry=r)
        self.calls_started = Counter("callwatch_calls_started", "Live calls accepted", ["connector"], registry=r)
        self.calls_ended = Counter("callwatch_calls_ended", "Live calls ended, by status", ["status", "connector"], registry=r)
        self.calls_refused = Counter(
            "callwatch_calls_refused", "Calls or sockets refused, by reason", ["reason", "connector"], registry=r)
        self.ingest_errors = Counter(
            "callwatch_ingest_errors", "error messages sent to phone systems, by code", ["code", "connector"], registry=r)
        self.log_errors = Counter(
            "callwatch_log_errors", "ERROR log lines of the service, by logger (failures inside the service)",
            ["logger"], registry=r)
        self.prompts_sent = Counter("callwatch_prompts_sent", "Etiquette prompts sent, by severity", ["severity"], registry=r)
        self.prompt_latency = Histogram(
            "callwatch_prompt_latency_seconds",
            "End of the final a prompt was raised on to the prompt being sent, on the call's clock",
            buckets=LATENCY_BUCKETS, registry=r)
        self.final_latency = Histogram(
            "callwatch_final_latency_seconds", "End of an utterance to its final being sent, on the call's clock",
            ["connector"], buckets=LATENCY_BUCKETS, registry=r)
        self.asr_behind_notices = Counter(
            "callwatch_asr_behind_notices", "Calls told that the recogniser is behind (asr_behind)", registry=r)
        self.draining = Gauge("callwatch_draining", "1 while the process is ending its calls to shut down", registry=r)
        self._error_log_counter: ErrorLogCounter | None = None

    def watch(self, readings: Readings) -> None:
        """Read `readings` at every scrape, and count the service's ERROR log lines (once)."""
        if self._error_log_counter is None:
            self.registry.register(RuntimeCollector(readings))
            self._error_log_counter = ErrorLogCounter(self)
            logging.getLogger("callwatch").addHandler(self._error_log_counter)

    def close(self) -> None:
        if self._error_log_counter is not None:
            logging.getLogger("callwatch").removeHandler(self._error_log_counter)

    def render(self) -> bytes:
        """The Prometheus text exposition; blocking (one database query), so call it off the event loop."""
        return generate_latest(self.registry)


class RuntimeCollector(Collector):
    def __init__(self, readings: Readings):
        self.readings = readings

    def describe(self) -> Iterable[Metric]:
        # Without this the registry would collect (and query the database) just to learn the names.
        return [
            GaugeMetricFamily("callwatch_live_calls", ""),
            GaugeMetricFamily("callwatch_live_calls_limit", ""),
            GaugeMetricFamily("callwatch_asr_queue_depth", ""),
            GaugeMetricFamily("callwatch_asr_finals_waiting", ""),
            GaugeMetricFamily("callwatch_asr_queue_depth_limit", ""),
            CounterMetricFamily("callwatch_asr_batches", ""),
            CounterMetricFamily("callwatch_asr_audio_seconds", ""),
            CounterMetricFamily("callwatch_asr_busy_seconds", ""),
            GaugeMetricFamily("callwatch_asr_real_time_factor", ""),
            CounterMetricFamily("callwatch_asr_jobs", "", labels=["kind"]),
            CounterMetricFamily("callwatch_asr_partials_dropped", ""),
            GaugeMetricFamily("callwatch_audit_jobs", "", labels=["state"]),
            GaugeMetricFamily("callwatch_info", "", labels=["asr_model", "asr_device", "asr_compute_type"]),
        ]

    def collect(self) -> Iterable[Metric]:
        read = self.readings
        scheduler = read.scheduler
        yield GaugeMetricFamily("callwatch_live_calls", "Live calls on this instance", value=read.live_calls())
        yield GaugeMetricFamily("callwatch_live_calls_limit", "CALLWATCH_MAX_LIVE_CALLS", value=read.max_live_calls)
        yield GaugeMetricFamily("callwatch_asr_queue_depth", "Recognitions waiting for the recogniser (finals, and at most one partial per speaking leg)",
                                value=scheduler.queue_depth)
        yield GaugeMetricFamily("callwatch_asr_finals_waiting", "Finals waiting for the recogniser (never dropped)",
                                value=scheduler.finals_waiting)
        yield GaugeMetricFamily("callwatch_asr_queue_depth_limit", "CALLWATCH_MAX_ASR_QUEUE_DEPTH: more finals waiting, and new calls are refused",
                                value=read.max_asr_queue_depth)
        stats = scheduler.stats
        yield CounterMetricFamily("callwatch_asr_batches", "Recogniser runs (each decodes one or more utterances together)",
                                  value=stats.batches)
        yield CounterMetricFamily("callwatch_asr_audio_seconds", "Seconds of audio the recogniser has decoded (partial re-decodes included)",
                                  value=stats.audio_seconds)
        yield CounterMetricFamily("callwatch_asr_busy_seconds", "Seconds the recogniser has spent decoding", value=stats.busy_seconds)
        yield GaugeMetricFamily("callwatch_asr_real_time_factor", "busy / audio seconds since start (rate() of the two counters gives it over a window)",
                                value=stats.real_time_factor)
        jobs = CounterMetricFamily("callwatch_asr_jobs", "Recognitions done, by kind", labels=["kind"])
        jobs.add_metric(["final"], stats.finals_done)
        jobs.add_metric(["partial"], stats.partials_done)
        yield jobs
        yield CounterMetricFamily("callwatch_asr_partials_dropped", "Partials dropped: superseded by a newer one, or too old when their turn came",
                                  value=stats.partials_dropped)
        audit = read.audit_jobs()
        if audit is not None:
            family = GaugeMetricFamily("callwatch_audit_jobs", "Audit jobs in the database, by state", labels=["state"])
            for state in sorted(set(AUDIT_JOB_STATES) | set(audit)):
                family.add_metric([state], audit.get(state, 0))
            yield family
        info = GaugeMetricFamily("callwatch_info", "The recogniser this instance runs", labels=["asr_model", "asr_device", "asr_compute_type"])
        info.add_metric(list(read.asr), 1)
        yield info


def audit_jobs_by_state(store: CallStore) -> dict[str, int] | None:
    """Job counts by state; None when the database does not answer within AUDIT_JOBS_WAIT_S (or the store's
    own retry, if shorter): the rest of the scrape still comes back."""
    try:
        return AuditJobs(store.db).count_by_state(within_s=min(AUDIT_JOBS_WAIT_S, store.db.retry_s))
    except SQLAlchemyError as exc:
        log.debug("audit jobs not counted: %s", exc)
        return None


class ErrorLogCounter(logging.Handler):
    """Counts ERROR lines of the `callwatch.*` loggers: the failures the service survives (an observer that
    raised, an audit job that crashed) become visible as a rate, not only as log lines."""

    def __init__(self, metrics: ServiceMetrics):
        super().__init__(level=logging.ERROR)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        self.metrics.log_errors.labels(record.name).inc()
