"""The last gate before a transcript reaches the agent: Whisper's known inventions are removed.

On silence, hold music or line noise Whisper can emit subtitle credits it learnt from video ("字幕由…提供",
"请不吝点赞订阅") or loop on one syllable. The VAD keeps most noise away from the recogniser; this catches
what gets through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.text import normalise_transcript, strip_for_scoring

# A unit of one character repeated 6+ times, or of 2-8 characters repeated 4+ times, is a decoding loop,
# not speech ("好好好" and "对对对对" are speech and stay).
_LOOP_SHORT = re.compile(r"(.)\1{5,}")
_LOOP_LONG = re.compile(r"(.{2,8}?)\1{3,}")


@dataclass(frozen=True)
class TranscriptFilter:
    blocked_phrases: tuple[str, ...]

    def clean(self, raw: str, *, final: bool) -> str:
        text = normalise_transcript(raw, final=final)
        text = _LOOP_LONG.sub(r"\1", _LOOP_SHORT.sub(r"\1", text))
        compact = strip_for_scoring(text)
        for phrase in self.blocked_phrases:
            if strip_for_scoring(phrase) and strip_for_scoring(phrase) in compact:
                return ""
        # Punctuation alone ("。", "…") is not an utterance.
        return text if compact else ""
