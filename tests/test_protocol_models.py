import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from wire.ingest import PromptClearedResult, client_message_adapter

DOCS = Path(__file__).resolve().parents[1] / "docs"


def start(**audio):
    return {"type": "start", "call_id": "c-1", "agent_id": "a1",
            "audio": {"encoding": "mulaw", "sample_rate": 8000, **audio}}


def test_a_valid_start_defaults_to_stereo_agent_left():
    message = client_message_adapter.validate_python(start())
    assert message.audio.leg_speakers() == ["agent", "customer"]
    assert message.audio.channels == 2


@pytest.mark.parametrize(
    "audio,field",
    [({"sample_rate": 96000}, "sample_rate"), ({"encoding": "opus"}, "encoding"),
     ({"channel_map": ["agent", "agent"]}, "channel_map")],
)
def test_a_bad_audio_format_names_the_field(audio, field):
    with pytest.raises(ValidationError) as info:
        client_message_adapter.validate_python(start(**audio))
    assert field in str(info.value)


def test_hangup_must_say_who_hung_up():
    with pytest.raises(ValidationError, match="must say 'by'"):
        client_message_adapter.validate_python({"type": "event", "event": "hangup"})
    ok = client_message_adapter.validate_python({"type": "event", "event": "hangup", "by": "agent", "t": 3})
    assert ok.by == "agent"


def test_unknown_fields_are_refused_rather_than_ignored():
    with pytest.raises(ValidationError, match="extra"):
        client_message_adapter.validate_python({"type": "event", "event": "hold", "colour": "red"})


@pytest.mark.parametrize("doc", ["protocol.md", "agent-feed.md"])
def test_the_documented_prompt_cleared_is_what_is_sent(doc):
    text = (DOCS / doc).read_text(encoding="utf-8")
    section = text[text.index("### `prompt_cleared`"):]
    body = section[section.index("```json") + len("```json"):]
    example = json.loads(body[:body.index("```")])
    assert PromptClearedResult.model_validate(example).model_dump(mode="json") == example
