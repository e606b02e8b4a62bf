"""Stored calls with an automatic report, as the rules engine scores them, for the review workflow's tests."""

from __future__ import annotations

from typing import Any

from rules.config import load_rules_config
from rules.findings import Finding
from rules.score import score_findings
from service.persistence.call_store import CallStore

AUDIO = {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}
PHONE = "13812345678"

# Automatic score 85: hold.apology twice (2 × 3), promise.rash (5), closing.caller_hangs_up_first (4).
FINDINGS: list[dict[str, Any]] = [
    {"rule_id": "hold.apology", "severity": "warn", "t": 40.0, "end": None, "evidence": [],
     "detail": "保持前未致歉", "prompt": "", "seed": "", "recovery": None},
    {"rule_id": "hold.apology", "severity": "warn", "t": 95.0, "end": None, "evidence": [],
     "detail": f"恢复通话未致歉，客户号码{PHONE}", "prompt": "", "seed": "", "recovery": None},
    {"rule_id": "promise.rash", "severity": "breach", "t": 120.0, "end": None, "evidence": [],
     "detail": "承诺“马上到”", "prompt": "", "seed": "", "recovery": None},
    {"rule_id": "closing.caller_hangs_up_first", "severity": "warn", "t": 180.0, "end": None, "evidence": [],
     "detail": "坐席先挂断", "prompt": "", "seed": "", "recovery": None},
]
AUTOMATIC_SCORE = 85.0


def seed_call(store: CallStore, call_id: str, agent_id: str, tenant: str | None,
              findings: list[dict[str, Any]] | None = None, duration: float = 200.0) -> str:
    """A completed call with its report scored by the report's own scoring; its row key."""
    findings = FINDINGS if findings is None else findings
    key = store.create_call(call_id, agent_id, "inbound", PHONE, "2026-11-23T09:30:00+08:00", AUDIO, tenant)
    assert key is not None
    score, deductions = score_findings([Finding.model_validate(f) for f in findings], load_rules_config())
    store.save_report(key, score, {"score": score, "deductions": [d.model_dump() for d in deductions],
                                   "findings": findings, "figures": None, "prompts": []})
    store.end_call(key, "completed", duration)
    return key
