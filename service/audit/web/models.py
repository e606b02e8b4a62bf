"""What crosses the wire in audits: recording metadata, jobs, batches, call-list rows and queries."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from rules.timeline import MAX_CALL_TIME_S

JobState = Literal["queued", "running", "done", "skipped", "failed"]
ErrorCode = Literal["empty", "too_large", "unsupported", "corrupt", "no_audio", "too_long", "channels",
                    "not_found", "bad_metadata", "judging_over_budget", "internal"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _utc(moment: datetime) -> datetime:
    # Every time the audit tables hold was written in UTC; SQLite hands it back without its zone.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


Finite = Annotated[float, Field(allow_inf_nan=False)]

UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
"""A moment the service recorded (a batch made, a job started): always sent with its zone, UTC."""


class MetaEvent(_Wire):
    """A call event on the recording's clock (seconds from its first sample)."""

    event: Literal["ringing", "answered", "hold", "resume", "transfer", "hangup"]
    t: float = Field(ge=0, le=MAX_CALL_TIME_S, allow_inf_nan=False)
    by: Literal["agent", "customer", "system"] | None = None
    target: str | None = None


class RecordingMeta(_Wire):
    """What the phone system knew about a call; every field optional. From a CSV beside the files, the file
    name, or the request (the request wins over the CSV, the CSV over the name)."""

    agent_id: str | None = Field(None, max_length=128)
    direction: Literal["inbound", "outbound"] | None = None
    started_at: datetime | None = None
    caller_number: str | None = Field(None, max_length=32)
    events: list[MetaEvent] | None = None

    def merged_over(self, base: "RecordingMeta") -> "RecordingMeta":
        ours = self.model_dump(exclude_none=True)
        return RecordingMeta.model_validate({**base.model_dump(exclude_none=True), **ours})


class AuditOptions(_Wire):
    """How a batch is audited."""

    agent_channel: Literal[0, 1] = Field(0, description="0: agent on the left (the recorders' custom), 1: right")
    max_seconds: float = Field(4 * 3600, gt=0, description="a longer recording fails as too_long")
    max_bytes: int = Field(512 * 1024 * 1024, gt=0, description="a larger file fails as too_large")
    beam_size: int | None = Field(None, ge=1, le=10, description="final beam size for audits; None: the service's")
    rules_name: str = "default"
    tenant: str | None = Field(None, max_length=128,
                               description="the tenant of the key that queued the batch: its calls belong to that tenant")


class JobOut(_Wire):
    job_id: str
    batch_id: str
    file_name: str
    state: JobState
    progress: float
    call_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    audio_seconds: float | None = None
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None


class BatchOut(_Wire):
    batch_id: str
    created_at: UtcDateTime
    rules_name: str
    total: int
    counts: dict[str, int]
    progress: float = Field(description="0..1 over all jobs, a running job counting by its own progress")
    finished: bool
    jobs: list[JobOut]


class PathBatchRequest(_Wire):
    """Bulk ingest of files already on the server (a mounted share), by path."""

    paths: list[str] = Field(min_length=1)
    meta: RecordingMeta | None = None
    rules: str | None = Field(None, description="rules YAML text (merged over the defaults)")
    agent_channel: Literal[0, 1] = 0


class CallRow(_Wire):
    call_id: str
    agent_id: str
    direction: str
    started_at: str | None
    duration: float | None
    score: float | None
    worst_valence: float | None
    worst_label: str | None
    finding_count: int
    rules: list[str]
    file_name: str | None
    speaker_attribution: str
    snippet: str | None = None


class CallPage(_Wire):
    total: int
    offset: int
    limit: int
    rows: list[CallRow]
    took_ms: float


SortKey = Literal["started_at", "score", "duration", "worst_valence", "finding_count", "agent_id", "audited_at"]
# Far past any call list, and well inside the 64-bit integer SQLite and PostgreSQL take (2**63 overflowed: a 500).
MAX_OFFSET = 10**9


class CallQuery(_Wire):
    q: str | None = Field(None, max_length=200, description="full-text search in the transcripts (Chinese)")
    speaker: Literal["agent", "customer"] | None = Field(None, description="search only what this side said")
    agent_id: str | None = None
    date_from: str | None = Field(None, description="ISO date or date-time, inclusive")
    date_to: str | None = Field(None, description="ISO date or date-time; a bare date includes that whole day")
    score_min: Finite | None = None
    score_max: Finite | None = None
    rule: str | None = Field(None, description="only calls that breached this rule id")
    mood: Literal["angry", "upset", "neutral", "satisfied"] | None = Field(None, description="worst customer mood")
    valence_max: float | None = Field(None, ge=-1, le=1, description="worst smoothed valence at most this")
    duration_min: Finite | None = None
    duration_max: Finite | None = None
    sort: SortKey = "started_at"
    order: Literal["asc", "desc"] = "desc"
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    limit: int = Field(50, ge=1, le=500)

    @field_validator("q", "agent_id", "rule", "date_from", "date_to", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("q", "agent_id", "rule")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        # PostgreSQL refuses NUL in text: say so here rather than fail in the database.
        if v is not None and "\x00" in v:
            raise ValueError("must not contain NUL characters")
        return v

    @field_validator("date_from", "date_to")
    @classmethod
    def _iso_moment(cls, v: str | None) -> str | None:
        """Normalised, so that it compares as text with the stored ISO start times."""
        if v is None:
            return None
        text = v.strip()
        try:
            return date.fromisoformat(text).isoformat() if len(text) <= 10 else datetime.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"{v!r} is not an ISO date (2026-11-23) or date-time (2026-11-23T09:30:00+08:00)") from None


class ReauditRequest(_Wire):
    rules: str = Field(description="rules YAML text, merged over the defaults")
    call_ids: list[str] | None = Field(None, description="these calls; default: every call the query selects")
    query: CallQuery | None = None
    apply: bool = Field(False, description="store the new reports (default: compare only)")


class ReauditRow(_Wire):
    call_id: str
    old_score: float | None
    new_score: float
    delta: float | None
    added: list[str]
    removed: list[str]


class ReauditOut(_Wire):
    calls: int
    changed: int
    mean_old: float | None
    mean_new: float | None
    rows: list[ReauditRow]
    applied: bool
