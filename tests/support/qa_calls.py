"""Stored calls for sampling plans, calibration and trends, written through the store as a live call writes them:
the call row with its start, customer utterances with their emotion results, the prompts the agent's screen
was sent (and the dismissals), then the report (findings scored by the report's own scoring, prompts with
`cleared_at`) and the end. The call list picks them up as it picks up ended live calls (`sync_index`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from support.stored_reports import AUDIO, PHONE

from rules.config import load_rules_config
from rules.findings import Finding
from rules.score import score_findings
from service.persistence.call_store import CallStore

RULES = load_rules_config()


def finding(rule_id: str, severity: str, t: float) -> dict[str, Any]:
    return {"rule_id": rule_id, "severity": severity, "t": t, "end": None, "evidence": [], "detail": f"{rule_id} @ {t}",
            "prompt": "", "seed": "", "recovery": None}


def mood(label: str, smoothed: float, turn: str | None = None) -> dict[str, Any]:
    """One customer utterance's emotion result, as the emotion layer stores it."""
    return {"t": 0.0, "valence": smoothed, "arousal": 0.4, "label": label, "confidence": 0.9,
            "smoothed_valence": smoothed, "turn": turn}


@dataclass(frozen=True)
class ShownPrompt:
    rule_id: str
    t: float
    dismissed: bool = False
    cleared: bool = False


def store_call(store: CallStore, call_id: str, agent_id: str, tenant: str | None, *,
               started_at: str = "2026-11-24T10:00:00+08:00", findings: Sequence[dict[str, Any]] = (),
               moods: Sequence[dict[str, Any]] = (), prompts: Sequence[ShownPrompt] = (),
               duration: float = 200.0) -> str:
    """A completed call with its report; its row key."""
    key = store.create_call(call_id, agent_id, "inbound", PHONE, started_at, AUDIO, tenant)
    assert key is not None, call_id
    for i, result in enumerate(moods):
        utterance = f"customer-{i}"
        store.add_utterance(key, utterance, "customer", 10.0 * i + 1, 10.0 * i + 4, "嗯")
        store.set_utterance_emotion(key, utterance, {**result, "t": 10.0 * i + 4})
    report_prompts = []
    for p in prompts:
        prompt_id = f"{p.rule_id}@{p.t:.2f}"
        store.add_prompt(key, prompt_id, p.rule_id, "warn", p.t, "提示", "[]")
        if p.dismissed:
            assert store.dismiss_prompt(key, prompt_id, agent_id)
        report_prompts.append({"rule_id": p.rule_id, "severity": "warn", "t": p.t, "emitted_at": p.t, "text": "提示",
                               "detail": "", "evidence": [], "recovery": None, "provisional": False,
                               "cleared_at": p.t + 5.0 if p.cleared else None})
    score, deductions = score_findings([Finding.model_validate(f) for f in findings], RULES)
    store.save_report(key, score, {"score": score, "deductions": [d.model_dump() for d in deductions],
                                   "findings": list(findings), "figures": None, "prompts": report_prompts})
    store.end_call(key, "completed", duration)
    return key
