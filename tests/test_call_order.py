"""One call's results reach its observers in the order they were produced, so what the rules judged live is
what the replay of the stored call judges: the same findings at the same times, from the same sources.

The real session, the real emotion model and rules engine; the recogniser's part is scripted (finals emitted
at the moment their speech ends, between 20 ms frames of silence that drive the call's clock), so the order
of results is the only thing under test.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from models.asr import Transcript
from pipelines.call_session import CallSession, StreamingOptions
from pipelines.rules_observer import RulesObserver, call_header
from pipelines.scheduler import ASRScheduler
from pipelines.transcript_filter import TranscriptFilter
from rules.config import load_rules_config
from rules.engine import RuleBook, audit_timeline
from tests.support.scripted_vad import ScriptedVADModel
from wire.ingest import AudioFormat, CallEventMessage, FinalResult

FORMAT = AudioFormat(encoding="pcm_s16le", sample_rate=16000, layout="stereo")
FRAME = np.zeros(320 * 2, dtype=np.int16).tobytes()  # 20 ms of stereo silence
CUSTOMER_SOUND = np.tile(np.array([0, 3000], dtype=np.int16), 320).tobytes()  # 20 ms: the customer leg only
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


class NoWords:
    """A recogniser that hears no words: voice activity without a final, like a cough on the line."""

    name = "no-words"

    def transcribe_batch(self, requests):
        return [Transcript("") for _ in requests]


async def test_a_prompt_is_cleared_right_after_what_ended_its_condition():
    # The real session and rules observer (scripted finals, a VAD that hears any non-zero sample): dead air is
    # ended by the customer's voice, before any words of theirs; the missed empathy by the agent's late apology.
    sent: list = []

    async def sink(result) -> None:
        sent.append(result)

    book = RuleBook(load_rules_config())
    rules = RulesObserver(book, call_header("clear-order", "A1042", "inbound", datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)))
    scheduler = ASRScheduler(NoWords())
    session = CallSession("clear-order", FORMAT, scheduler=scheduler, vad=ScriptedVADModel(),
                          transcript_filter=TranscriptFilter(()), sink=sink, observers=[rules],
                          options=StreamingOptions(partials=False, keep_speech=False))

    async def until(t: float, frame: bytes = FRAME) -> None:
        while session.now < t:
            await session.audio(frame)

    async def final(n: int, speaker: str, start: float, end: float, text: str) -> None:
        await until(end)
        await session.emit(FinalResult(call_id="", event_id=0, utterance_id=f"u{n}", speaker=speaker, start=start,
                                       end=end, text=text))

    await session.start()
    await session.event(CallEventMessage(type="event", event="answered", t=0.0))
    await final(0, "agent", 0.5, 3.0, SCRIPT[0][3])
    await final(1, "customer", 3.5, 7.5, SCRIPT[1][3])
    await final(2, "agent", 8.0, 9.5, "我查一下您的单子。")
    await until(24.0)  # dead air from 9.5 s; no empathy by 22.5 s
    await until(25.0, CUSTOMER_SOUND)
    await final(3, "agent", 26.0, 28.0, "真的很抱歉，让您着急了。")
    await session.event(CallEventMessage(type="event", event="hangup", by="customer"))
    await session.finish("completed")
    scheduler.close()

    kinds = [(r.type, getattr(r, "prompt_id", None)) for r in sent if r.type in ("prompt", "prompt_cleared")]
    assert kinds == [("prompt", "listen.dead_air@9.50"), ("prompt", "complaint.empathy_first@3.50"),
                     ("prompt_cleared", "listen.dead_air@9.50"), ("prompt_cleared", "complaint.empathy_first@3.50")]
    by_id = {(r.type, getattr(r, "prompt_id", None)): r.event_id for r in sent}
    apology = next(r for r in sent if r.type == "final" and r.utterance_id == "u3")
    assert by_id[("prompt_cleared", "listen.dead_air@9.50")] < apology.event_id  # on the voice, before any words
    assert by_id[("prompt_cleared", "complaint.empathy_first@3.50")] == apology.event_id + 1
    assert [r.event_id for r in sent] == list(range(1, len(sent) + 1))
    # Cleared or not, the findings stand; the replay of the stored call raises and clears the same prompts.
    report = rules.report
    assert {"listen.dead_air", "complaint.empathy_first"} <= {f.rule_id for f in report.findings}
    replayed = audit_timeline(rules.engine.timeline(), book)
    assert [(f.rule_id, f.t, f.evidence) for f in report.findings] == [(f.rule_id, f.t, f.evidence) for f in replayed.findings]
    assert [(p.prompt_id, p.cleared_at is not None) for p in report.prompts] == [
        (p.prompt_id, p.cleared_at is not None) for p in replayed.prompts]
