"""One call's results reach its observers in the order they were produced, so what the rules judged live is
what the replay of the stored call judges: the same findings at the same times, from the same sources.

The real session, the real emotion model and rules engine; the recogniser's part is scripted (finals emitted
at the moment their speech ends, between 20 ms frames of silence that drive the call's clock), so the order
of results is the only thing under test.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from rules.engine import audit_timeline
from wire.ingest import AudioFormat, CallEventMessage, FinalResult

FORMAT = AudioFormat(encoding="pcm_s16le", sample_rate=16000, layout="stereo")
FRAME = np.zeros(320 * 2, dtype=np.int16).tobytes()  # 20 ms of stereo silence
# A customer who complains, and an agent who never says sorry: the complaint's onset, dated and sourced by
# the emotion or the words of a customer final, is the evidence of the missed empathy, live and in the replay.
SCRIPT = [
    ("agent", 1.0, 3.5, "您好，示例公司客服中心，工号一零四二，很高兴为您服务。"),
    ("customer", 4.0, 8.0, "你们这是什么服务！我都打了三次电话了，到现在还没人管！"),
    ("customer", 8.6, 11.0, "我要投诉你们，太过分了！"),
    ("agent", 11.5, 15.0, "嗯，我查一下您的单子。"),
    ("customer", 16.0, 18.0, "好吧，那你快点。"),
    ("agent", 18.5, 22.0, "已经为您加急处理了，今天之内给您回电，请问还有什么可以帮您？"),
    ("customer", 22.5, 24.0, "没有了，谢谢你。"),
    ("agent", 24.5, 26.5, "感谢您的来电，再见。"),
]


async def test_live_findings_are_the_replays_item_for_item(runtime):
    sent: list = []

    async def sink(result) -> None:
        sent.append(result)

    observers = runtime.observers_for("order-parity", "A1042", "inbound",
                                      datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc), None, store_report=False)
    session = runtime.new_call("order-parity", FORMAT, sink, observers=observers, partials=False)
    await session.start()
    await session.event(CallEventMessage(type="event", event="ringing", t=0.0))
    await session.event(CallEventMessage(type="event", event="answered", t=0.5))
    for n, (speaker, start, end, text) in enumerate(SCRIPT):
        while session.now < end:
            await session.audio(FRAME)
        await session.emit(FinalResult(call_id="", event_id=0, utterance_id=f"u{n}", speaker=speaker, start=start,
                                       end=end, text=text))
    while session.now < 27.5:
        await session.audio(FRAME)
    await session.event(CallEventMessage(type="event", event="hangup", by="customer"))
    await session.finish("completed")

    rules = observers[-1]
    live, replayed = rules.report, audit_timeline(rules.engine.timeline(), runtime.rule_book)
    assert any(r.type == "emotion" for r in sent) and live.figures.complaint_recovered.complaint
    assert [(f.rule_id, f.t, f.evidence) for f in live.findings] == [(f.rule_id, f.t, f.evidence) for f in replayed.findings]
    assert live.figures == replayed.figures
    assert [r.event_id for r in sent] == list(range(1, len(sent) + 1))
