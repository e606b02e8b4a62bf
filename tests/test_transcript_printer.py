"""`callwatch stream` prints a call for a person: a prompt, and its clearing, each on a line of its own."""

import io

from clients.ingest_client import TranscriptPrinter


def test_a_prompt_and_its_clearing_are_printed():
    out = io.StringIO()
    printer = TranscriptPrinter(out=out)
    printer({"type": "prompt", "prompt_id": "listen.dead_air@9.50", "rule_id": "listen.dead_air", "text": "已经 10 秒没人说话了"})
    printer({"type": "prompt_cleared", "prompt_id": "listen.dead_air@9.50"})
    assert out.getvalue().splitlines() == ["  ⚠ 提示 [listen.dead_air]: 已经 10 秒没人说话了", "  ✓ 提示已解除 [listen.dead_air@9.50]"]
