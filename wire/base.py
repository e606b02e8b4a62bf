"""The base of every message model on callwatch's websockets (wire/ingest.py, wire/agent_feed.py)."""

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    # A field the protocol does not know is refused, not dropped: a misspelt optional field (a client's, or
    # ours when building a result) would otherwise vanish without a word.
    model_config = ConfigDict(extra="forbid")
