"""Re-audit: the rules over stored calls with another rules file, compared (and applied on request)."""

from __future__ import annotations

import json

import pytest

from rules.config import RulesConfigError
from service.audit.running.reaudit import reaudit_calls
from service.audit.web.models import CallQuery
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore

NO_GREETING_RULE = "rules:\n  opening.greeting:\n    enabled: false\n"


def _audited_ids(audited) -> list[str]:
    summary = json.loads((audited["out"] / "summary.json").read_text(encoding="utf-8"))
    return [c["call_id"] for c in summary["calls"] if c["state"] == "done"]


def test_the_same_rules_reproduce_the_stored_reports(runtime, audited):
    ids = _audited_ids(audited)
    same = reaudit_calls(runtime.store, "{}", "same.yaml", call_ids=ids)
    assert same.calls == len(ids) and same.changed == 0


def test_a_rule_switched_off_is_compared_then_applied(runtime, audited):
    ids = _audited_ids(audited)
    tried = reaudit_calls(runtime.store, NO_GREETING_RULE, "trial.yaml", call_ids=ids)
    inbound = [r for r in tried.rows if "opening.greeting" in r.removed]
    assert inbound, tried.rows
    for r in inbound:
        assert r.delta == pytest.approx(5.0)  # the rule's weight, given back
    before = {r.call_id: r.score for r in CallList(runtime.store.db).page(CallQuery(limit=500)).rows}
    assert all(before[r.call_id] == r.old_score for r in tried.rows)  # nothing stored by a trial

    applied = reaudit_calls(runtime.store, NO_GREETING_RULE, "trial.yaml", call_ids=[inbound[0].call_id], apply=True)
    assert applied.applied
    rows = CallList(runtime.store.db).page(CallQuery(rule="opening.greeting", limit=500)).rows
    assert inbound[0].call_id not in {r.call_id for r in rows}
    # Put it back for the other tests.
    reaudit_calls(runtime.store, "{}", "default", call_ids=[inbound[0].call_id], apply=True)


def test_bad_rules_are_refused_with_the_line(runtime, audited):
    with pytest.raises(RulesConfigError, match="line"):
        reaudit_calls(runtime.store, "rules:\n  opening.greeting:\n    weight: -3\n", "bad.yaml",
                      call_ids=_audited_ids(audited))


def test_applied_to_a_live_call_the_list_keeps_when_it_was_received(tmp_path):
    # The phone system gave no start time: the call list shows when the call was received, re-audited or not.
    store = CallStore(f"sqlite:///{tmp_path / 'calls.db'}")
    store.create_call("no-start", "a1", "inbound", None, None,
                      {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"})
    store.add_utterance("no-start", "agent-0", "agent", 0.5, 2.0, "您好，请问有什么可以帮您")
    store.end_call("no-start", "completed", 3.0)
    store.save_report("no-start", 90.0, {"score": 90.0, "findings": [], "transcript": "live"})
    CallList(store.db).sync()
    [listed] = CallList(store.db).page(CallQuery()).rows
    assert listed.started_at is not None

    reaudit_calls(store, NO_GREETING_RULE, "trial.yaml", call_ids=["no-start"], apply=True)
    [after] = CallList(store.db).page(CallQuery()).rows
    assert after.started_at == listed.started_at
    store.close()


def test_applied_to_a_live_call_not_listed_yet_it_is_listed_for_its_tenant(tmp_path):
    # Re-audited before the list picked it up (`CallList.sync`): it is listed under its tenant, with the time it
    # was received, as `sync` would have listed it.
    store = CallStore(f"sqlite:///{tmp_path / 'calls.db'}")
    store.create_call("unlisted", "a1", "inbound", None, None,
                      {"encoding": "pcm_s16le", "sample_rate": 16000, "layout": "two_legs"}, tenant="t1")
    store.add_utterance("unlisted", "agent-0", "agent", 0.5, 2.0, "您好，请问有什么可以帮您")
    store.end_call("unlisted", "completed", 3.0)
    store.save_report("unlisted", 90.0, {"score": 90.0, "findings": [], "transcript": "live"})

    reaudit_calls(store, NO_GREETING_RULE, "trial.yaml", call_ids=["unlisted"], apply=True)
    [listed] = CallList(store.db).page(CallQuery(), tenant="t1").rows
    assert listed.call_id == "unlisted" and listed.started_at is not None
    store.close()
