"""The agent feed's messages, as pydantic models: what the agent screen and the supervisor board send, and the
messages only the feed sends. The rest of what the feed carries are the ingest results (wire/ingest.py), passed
through as they are.

docs/agent-feed.md is the prose version of this file; keep them in step.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

from wire.base import WireModel


class CallInfo(BaseModel):
    """What the feed needs to know about a call besides its results (from the ingest `start`)."""

    call_id: str = Field(description="the call's row key (the id as sent, unless another tenant's call had it)")
    agent_id: str
    tenant: str | None = Field(None, description="the integrator's tenant that streams it (None: no tenant)")
    direction: Literal["inbound", "outbound"] = "inbound"
    caller_number: str | None = None
    started_at: str | None = Field(None, description="local start time as the phone system gave it, ISO 8601")


class Resume(WireModel):
    call_id: str = Field(min_length=1, max_length=128)
    after: int = Field(ge=0, description="the last event id the client saw in that call")


class AgentHello(WireModel):
    type: Literal["hello"]
    agent_id: str = Field(min_length=1, max_length=128)
    token: str = Field(max_length=512)
    resume: Resume | None = None


class SupervisorHello(WireModel):
    type: Literal["hello"]
    supervisor: str = Field(min_length=1, max_length=128)
    token: str = Field(max_length=512)


class Dismiss(WireModel):
    type: Literal["dismiss"]
    call_id: str = Field(min_length=1, max_length=128)
    prompt_id: str = Field(min_length=1, max_length=128)


class Watch(WireModel):
    """Supervisor only: stream one call in full (transcript, emotion, prompts), resuming after `after`."""

    type: Literal["watch"]
    call_id: str = Field(min_length=1, max_length=128)
    after: int = Field(0, ge=0)


class Unwatch(WireModel):
    type: Literal["unwatch"]
    call_id: str = Field(min_length=1, max_length=128)


hello_adapter: TypeAdapter[AgentHello | SupervisorHello] = TypeAdapter(Union[AgentHello, SupervisorHello])
command_adapter: TypeAdapter[Dismiss | Watch | Unwatch] = TypeAdapter(
    Union[Dismiss, Watch, Unwatch]  # discriminated by `type`
)


# Feed-only messages (the others are the ingest results and the lead's emotion/prompt/report, passed through).


class CallMessage(WireModel):
    type: Literal["call"] = "call"
    call_id: str
    agent_id: str
    direction: str
    caller_number: str | None
    started_at: str | None
    status: Literal["live", "ended"]
    elapsed: float = Field(description="seconds since callwatch first heard of the call, at sending time")


class DismissedMessage(WireModel):
    type: Literal["dismissed"] = "dismissed"
    call_id: str
    prompt_id: str


class ReadyMessage(WireModel):
    type: Literal["ready"] = "ready"
    role: Literal["agent", "supervisor"]
    name: str
    live_calls: list[str]


class SummaryMessage(WireModel):
    """Supervisor view: one line per call, sent when its mood, prompts or status change."""

    type: Literal["summary"] = "summary"
    call_id: str
    agent_id: str
    caller_number: str | None
    direction: str
    status: Literal["live", "ended"]
    elapsed: float
    mood: dict[str, Any] | None
    mood_trend: list[float]
    open_prompts: list[dict[str, Any]]
    score: float | None

