"""The per-call audit report (JSON, the documented schema in docs/report.md), assembled from the store."""

from __future__ import annotations

from typing import Any

from service.audit.running.timeline import guess_mono_sides
from service.persistence.call_list import CallList, worst_mood
from service.persistence.call_store import CallStore

SCHEMA = "callwatch.audit-report/1"
MONO_NOTE = "单声道录音：无法按声道区分坐席与客户，说话人为推测（按停顿轮换），相关发现仅供参考。"
SIDE_LABEL = {"agent": "坐席", "customer": "客户", "unknown": "未知"}


class ReportNotFound(KeyError):
    pass


def call_report(store: CallStore, call_id: str) -> dict[str, Any]:
    """Everything QA sees about one call; raises ReportNotFound for an unknown call."""
    call = store.get_call(call_id)
    if call is None:
        raise ReportNotFound(call_id)
    listed = CallList(store.db).listed(call_id)
    judged = call.report or {}
    audit = listed.audit if listed is not None else {}
    utts = store.list_utterances(call_id)
    mono = any(u["speaker"] not in ("agent", "customer") for u in utts)
    guesses = guess_mono_sides(utts, call.direction) if mono else [None] * len(utts)
    utterances = [
        {**u, "speaker_uncertain": u["speaker"] not in ("agent", "customer"), "speaker_guess": g}
        for u, g in zip(utts, guesses)
    ]
    curve = [
        {"t": u["emotion"].get("t", u["end"]), "utterance_id": u["utterance_id"], "valence": u["emotion"].get("valence"),
         "smoothed_valence": u["emotion"].get("smoothed_valence", u["emotion"].get("valence")),
         "arousal": u["emotion"].get("arousal"), "label": u["emotion"].get("label"), "turn": u["emotion"].get("turn")}
        for u in utts if u.get("emotion")
    ]
    valence, label = worst_mood(utts)
    recording = {k: audit.get(k) for k in ("file_name", "sha256", "size_bytes", "codec", "container", "channels",
                                           "sample_rate", "agent_channel")} if audit.get("file_name") else None
    return {
        "schema": SCHEMA,
        "call_id": call_id,
        "agent_id": call.agent_id,
        "direction": call.direction,
        "caller_number": call.caller_number,
        "started_at": call.started_at,
        "duration_s": call.duration,
        "status": call.status,
        "recording": recording,
        "speaker_attribution": "guessed" if mono else "channels",
        "speaker_note": MONO_NOTE if mono else None,
        "rules": audit.get("rules", "default"),
        "audited_at": audit.get("audited_at"),
        "asr": {"model": audit.get("asr_model"), "beam_size": audit.get("beam_size")},
        "events_source": audit.get("events_source"),
        "events": store.list_events(call_id),
        "utterances": utterances,
        "emotion_curve": curve,
        "worst_mood": {"valence": valence, "label": label},
        "transcript": judged.get("transcript", "live"),
        "score": judged.get("score"),
        "deductions": judged.get("deductions", []),
        "findings": judged.get("findings", []),
        "figures": judged.get("figures"),
        "prompts": judged.get("prompts", []),
    }
