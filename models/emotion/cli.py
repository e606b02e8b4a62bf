"""``callwatch emotion``: utterances on standard input, one JSON object per line out."""

from __future__ import annotations

import json
from typing import TextIO

from .schema import TextSentimentOut
from .text import SentimentClassifier


def emotion_cli_main(
    stdin: TextIO, stdout: TextIO, classifier: SentimentClassifier | None = None
) -> int:
    """Read one utterance per line; print ``{"label", "valence", "confidence", "polarity"}``
    per line, in order (an empty line gets the defined neutral result with confidence 0).
    Returns the exit status."""
    clf = classifier or SentimentClassifier.load()
    for line in stdin:
        text = line.rstrip("\r\n")
        result = clf.predict([text])[0]
        stdout.write(json.dumps(TextSentimentOut.of(result).model_dump(), ensure_ascii=False) + "\n")
        stdout.flush()
    return 0
