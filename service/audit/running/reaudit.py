"""Re-audit: the rules (not the recogniser) over stored calls with another rules file.

A supervisor tries a threshold on last month's calls before changing it: each call's stored timeline is
replayed through the engine with the new rules and compared with its stored report. Nothing is written
unless asked (`apply`), and then the report, the score and the call-list row change, the transcript not.
Every read and write waits out a database outage of up to CALLWATCH_DATABASE_RETRY_S instead of failing
(the repositories' outage retry).
"""

from __future__ import annotations

from typing import Any

from rules.engine import RuleBook, audit_timeline
from rules.config import load_rules_config_text
from service.audit.outputs.exports import spreadsheet_csv
from service.audit.running.timeline import timeline_from_store
from service.audit.web.models import CallQuery, ReauditOut, ReauditRow
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore


def _rules_hit(report: dict[str, Any] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in (report or {}).get("findings", []):
        out[f["rule_id"]] = out.get(f["rule_id"], 0) + 1
    return out


def reaudit_calls(store: CallStore, rules_text: str, rules_name: str, *, call_ids: list[str] | None = None,
                  query: CallQuery | None = None, apply: bool = False) -> ReauditOut:
    """Raises RulesConfigError (a ValueError) for rules that do not validate, KeyError for an unknown call."""
    book = RuleBook(load_rules_config_text(rules_text, rules_name))
    call_list = CallList(store.db)
    ids = call_ids if call_ids is not None else call_list.call_ids(query or CallQuery())
    rows: list[ReauditRow] = []
    for call_id in ids:
        stored = store.get_call(call_id)
        old = stored.report if stored is not None else None
        timeline, _ = timeline_from_store(store, call_id)
        new = audit_timeline(timeline, book).model_dump(mode="json")
        new["transcript"] = (old or {}).get("transcript", "live")  # the stored text did not change
        before, after = _rules_hit(old), _rules_hit(new)
        old_score = old.get("score") if old else None
        rows.append(ReauditRow(
            call_id=call_id, old_score=old_score, new_score=new["score"],
            delta=round(new["score"] - old_score, 2) if old_score is not None else None,
            added=sorted(r for r in after if after[r] > before.get(r, 0)),
            removed=sorted(r for r in before if before[r] > after.get(r, 0)),
        ))
        if apply:
            # The transcript did not change: the new report and score, and the list row refreshed from them.
            call_list.replace_report(call_id, new, store.list_utterances(call_id), rules_name=rules_name,
                                     index_unlisted=True)
    olds = [r.old_score for r in rows if r.old_score is not None]
    return ReauditOut(
        calls=len(rows), changed=sum(1 for r in rows if r.added or r.removed or (r.delta or 0) != 0),
        mean_old=round(sum(olds) / len(olds), 2) if olds else None,
        mean_new=round(sum(r.new_score for r in rows) / len(rows), 2) if rows else None,
        rows=rows, applied=apply,
    )


def comparison_csv(result: ReauditOut) -> str:
    return spreadsheet_csv(["call_id", "old_score", "new_score", "delta", "added_rules", "removed_rules"],
                           ([r.call_id, r.old_score, r.new_score, r.delta, " ".join(r.added), " ".join(r.removed)]
                            for r in result.rows))
