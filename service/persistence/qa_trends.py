"""What trends read (docs/qa.md, Trends): one record per listed call in a date range, with the score and findings
QA settled on, its customer's turns and its prompts. The statements are `service.qa.call_facts`'s, run here
in one read transaction under the store's outage retry; teams are looked up per call, as it is now."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

from service.persistence.qa_call_facts import (
    CallScope,
    automatic_rule_counts,
    customer_turns,
    list_ended_calls,
    listed_calls,
    prompt_outcomes,
    submitted_reviews,
)
from service.qa.call_outcomes import NO_MOOD, NO_PROMPTS
from service.qa.trends import TrendCall
from service.qa.weeks import week_of_start
from service.persistence.call_store import CallStore

TeamOf = Callable[[str | None, str], str | None]


def trend_calls(store: CallStore, *, tenant: str | None, date_from: date, date_to: date,
                agent_ids: frozenset[str] | None, team_of: TeamOf, keep: Callable[[str | None, str, str | None], bool]
                ) -> list[TrendCall]:
    """The listed calls of `tenant` (None: every tenant's) that started from `date_from` to `date_to` (both
    days included), of `agent_ids` (None: any), for which `keep(tenant, agent, team)` holds."""
    list_ended_calls(store)
    scope = CallScope(tenant, date_from.isoformat(), (date_to + timedelta(days=1)).isoformat(), agent_ids)

    def read(_attempt: int) -> list[TrendCall]:
        with store.db.engine.connect() as conn:
            listed = []
            for c in listed_calls(conn, scope):
                team = team_of(c.tenant, c.agent_id)
                if keep(c.tenant, c.agent_id, team):
                    listed.append((c, team))
            if not listed:
                return []
            reviewed, automatic = submitted_reviews(conn, scope), automatic_rule_counts(conn, scope)
            turns, prompts = customer_turns(conn, scope), prompt_outcomes(conn, scope)
        out: list[TrendCall] = []
        for c, team in listed:
            week = week_of_start(c.started_at)
            if week is None:
                continue
            review = reviewed.get(c.call_key)
            use_review = review is not None and review.reviewed_score is not None
            mood = turns.get(c.call_key, NO_MOOD)
            out.append(TrendCall(
                tenant=c.tenant, agent_id=c.agent_id, team=team, week=week.isoformat(),
                score=review.reviewed_score if review is not None and use_review else c.automatic_score,
                reviewed=use_review,
                rules=review.counted_rules if review is not None and use_review else automatic.get(c.call_key, Counter()),
                turned_negative=mood.turned_negative, recovered=mood.recovered,
                prompts=prompts.get(c.call_key, NO_PROMPTS)))
        return out

    return store.db.retrying(read)
