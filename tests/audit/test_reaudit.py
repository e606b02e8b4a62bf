"""Re-audit: the rules over stored calls with another rules file, compared (and applied on request)."""

from __future__ import annotations

import json

import pytest

from rules.config import RulesConfigError
from service.audit.models import CallQuery
from service.audit.query import list_calls
from service.audit.reaudit import reaudit_calls

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
    before = {r.call_id: r.score for r in list_calls(runtime.store.engine, CallQuery(limit=500)).rows}
    assert all(before[r.call_id] == r.old_score for r in tried.rows)  # nothing stored by a trial

    applied = reaudit_calls(runtime.store, NO_GREETING_RULE, "trial.yaml", call_ids=[inbound[0].call_id], apply=True)
    assert applied.applied
    rows = list_calls(runtime.store.engine, CallQuery(rule="opening.greeting", limit=500)).rows
    assert inbound[0].call_id not in {r.call_id for r in rows}
    # Put it back for the other tests.
    reaudit_calls(runtime.store, "{}", "default", call_ids=[inbound[0].call_id], apply=True)


def test_bad_rules_are_refused_with_the_line(runtime, audited):
    with pytest.raises(RulesConfigError, match="line"):
        reaudit_calls(runtime.store, "rules:\n  opening.greeting:\n    weight: -3\n", "bad.yaml",
                      call_ids=_audited_ids(audited))
