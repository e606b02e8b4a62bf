"""How well a streamed two-party call was heard, per speaker, against the shared call's reference turns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from models.text import character_error_rate

# Measured on call_01 (stereo, 8 kHz) through the live path: agent 0.065 (pcm) and 0.022 (μ-law), customer
# 0.205 on both; the customer side holds the weakly-labelled WenetSpeech NST clip that base mishears
# ("担当" → "单当国"). Bounds are the measurement plus about 0.05, two or three characters on this call.
BOUNDS = {
    ("pcm_s16le", "agent"): 0.12,
    ("pcm_s16le", "customer"): 0.26,
    ("mulaw", "agent"): 0.08,
    ("mulaw", "customer"): 0.26,
}


def speaker_cer(lines: Iterable[Mapping[str, Any]], timeline: Mapping[str, Any], role: str) -> float:
    """CER of one speaker's lines (finals as sent, or stored utterances: each with `speaker`, `start`, `text`)
    against that speaker's reference turns."""
    hypothesis = "".join(line["text"] for line in sorted(lines, key=lambda line: line["start"])
                         if line["speaker"] == role)
    reference = "".join(turn["text"] for turn in timeline["turns"] if turn["role"] == role)
    errors, length = character_error_rate(reference, hypothesis)
    return errors / length


async def second_pass_stored(runtime: Any, key: str, timeout: float = 120.0) -> list[dict[str, Any]]:
    """The call's stored utterances once the second pass has replaced the live ones (it runs after the call
    ends, in the background)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = runtime.store.get_call(key)
        if call is not None and (call.report or {}).get("transcript") == "second_pass":
            return runtime.store.list_utterances(key)
        await asyncio.sleep(0.2)
    raise AssertionError(f"no second pass stored for {key} within {timeout} s")
