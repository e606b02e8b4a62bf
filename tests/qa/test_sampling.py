"""What a sampling plan picks, without a database: the share per agent and week, the always-pick conditions,
reruns, top-ups and balanced assignment (service/qa/sampling.py); the customer-mood and prompt definitions
(service/qa/call_outcomes.py) and weeks (service/qa/weeks.py)."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date

import pytest

from service.qa.call_outcomes import PromptOutcome, cleared_prompt_ids, mood_outcome, prompt_outcome
from service.qa.sampling import (
    LOW_SCORE,
    NEGATIVE_END,
    SAMPLE,
    SEVERE_FINDING,
    Candidate,
    EarlierPick,
    PlanRules,
    choose,
    sample_size,
)
from service.qa.weeks import last_whole_week, week_bounds, week_of_start

RULES = PlanRules(share=0.05, score_below=70.0, severities=frozenset({"breach"}), negative_end=True, seed="s1")
REVIEWERS = ["qa-1", "qa-2", "qa-3"]


def _calls(agent: str, n: int, tenant: str = "acme", **special: Candidate) -> list[Candidate]:
    return [special.get(f"{agent}-{i:02d}", Candidate(f"{agent}-{i:02d}", tenant, agent, 100.0)) for i in range(n)]


def _documented_rank(seed: str, key: str) -> float:
    # docs/qa.md: the first 8 bytes of SHA-256 over "seed NUL call key", as a fraction of 2^64.
    return int.from_bytes(hashlib.sha256(f"{seed}\0{key}".encode()).digest()[:8], "big") / 2**64


def test_the_share_is_rounded_up_per_agent_so_every_agent_with_calls_is_looked_at() -> None:
    assert [sample_size(0.05, n) for n in (0, 1, 20, 21, 40, 41)] == [0, 1, 1, 2, 2, 3]
    assert sample_size(0.0, 40) == 0 and sample_size(1.0, 7) == 7 and sample_size(0.3, 10) == 3


def test_a_week_draws_the_share_of_each_agent_the_lowest_ranked_by_the_seed() -> None:
    calls = _calls("a1", 40) + _calls("a2", 10)
    picks = choose(calls, RULES, [], REVIEWERS)
    sampled = Counter(p.agent_id for p in picks if any(r.code == SAMPLE for r in p.reasons))
    assert sampled == {"a1": 2, "a2": 1}
    for agent, k in sampled.items():
        lowest = sorted((c.call_key for c in calls if c.agent_id == agent), key=lambda key: _documented_rank("s1", key))[:k]
        assert {p.call_key for p in picks if p.agent_id == agent} == set(lowest)
    assert [p.call_key for p in choose(calls, RULES, [], REVIEWERS)] == [p.call_key for p in picks]  # seeded
    other_seed = choose(calls, PlanRules(0.05, None, frozenset(), False, "s2"), [], REVIEWERS)
    assert {p.call_key for p in other_seed} != {p.call_key for p in picks}


def test_every_call_meeting_a_condition_is_picked_and_says_why() -> None:
    special = {
        "a1-03": Candidate("a1-03", "acme", "a1", 95.0, findings=(("promise.rash", "breach", 120.0),)),
        "a1-04": Candidate("a1-04", "acme", "a1", 64.0, findings=(("hold.apology", "warn", 40.0),)),
        "a1-05": Candidate("a1-05", "acme", "a1", 100.0, ended_negative="the customer's last words were angry"),
        "a1-06": Candidate("a1-06", "acme", "a1", 70.0, findings=(("hold.apology", "warn", 40.0),)),  # not under 70
    }
    picks = {p.call_key: p for p in choose(_calls("a1", 40, **special), PlanRules(0.0, 70.0, frozenset({"breach"}), True, "s"),
                                           [], REVIEWERS)}
    assert set(picks) == {"a1-03", "a1-04", "a1-05"}
    assert [(r.code, r.detail) for r in picks["a1-03"].reasons] == [(SEVERE_FINDING, "promise.rash (breach) at 120 s")]
    assert [(r.code, r.detail) for r in picks["a1-04"].reasons] == [(LOW_SCORE, "automatic score 64 is under 70")]
    assert [(r.code, r.detail) for r in picks["a1-05"].reasons] == [(NEGATIVE_END, "the customer's last words were angry")]
    # Conditions off: nothing but the share.
    assert choose(_calls("a1", 40, **special), PlanRules(0.0, None, frozenset(), False, "s"), [], REVIEWERS) == []


def test_a_rerun_picks_nothing_new_and_a_fuller_week_tops_the_sample_up() -> None:
    calls = _calls("a1", 40)
    first = choose(calls, RULES, [], REVIEWERS)
    earlier = [EarlierPick(p.call_key, ("acme", p.agent_id), True, p.reviewer) for p in first]
    assert choose(calls, RULES, earlier, REVIEWERS) == []
    more = choose(_calls("a1", 60), RULES, earlier, REVIEWERS)  # ⌈5 % of 60⌉ = 3: one more
    assert len(more) == 1 and more[0].call_key not in {p.call_key for p in first}


def test_picks_are_balanced_across_reviewers_counting_the_weeks_earlier_picks() -> None:
    picks = choose(_calls("a1", 40) + _calls("a2", 40) + _calls("a3", 40) + _calls("a4", 21), RULES, [], REVIEWERS)
    assert len(picks) == 8 and sorted(Counter(p.reviewer for p in picks).values()) == [2, 3, 3]
    # The first reviewer already had four this week: the next picks go to the others first.
    earlier = [EarlierPick(f"old-{i}", ("acme", "a9"), False, "qa-1") for i in range(4)]
    later = choose(_calls("a1", 40), RULES, earlier, REVIEWERS)
    assert [p.reviewer for p in later] == ["qa-2", "qa-3"]


def test_an_agent_is_known_within_its_tenant() -> None:
    picks = choose(_calls("a1", 40, "acme") + [Candidate(f"g-{i}", "globex", "a1", 100.0) for i in range(40)], RULES, [],
                   REVIEWERS)
    assert Counter(p.tenant for p in picks) == {"acme": 2, "globex": 2}


# ---------------------------------------------------------------- definitions


def _m(label: str, turn: str | None = None) -> dict[str, object]:
    return {"label": label, "turn": turn}


@pytest.mark.parametrize("samples, turned, recovered, ended", [
    ([], False, False, False),
    ([_m("neutral"), _m("upset")], False, False, False),  # upset, never turned: not negative
    ([_m("neutral"), _m("angry", "negative"), _m("upset")], True, False, True),
    ([_m("angry", "negative"), _m("neutral", "recovered")], True, True, False),
    ([_m("angry", "negative"), _m("neutral", "recovered"), _m("upset", "negative")], True, False, True),
    ([_m("neutral"), _m("angry")], False, False, True),  # the last words angry
])
def test_turned_negative_recovered_and_ended_negative(samples: list[dict[str, object]], turned: bool, recovered: bool,
                                                       ended: bool) -> None:
    outcome = mood_outcome(samples)
    assert (outcome.turned_negative, outcome.recovered, outcome.ended_negative is not None) == (turned, recovered, ended)


def test_a_shown_prompt_is_heeded_when_its_condition_cleared() -> None:
    def prompt(rule: str, t: float, cleared: float | None) -> dict[str, object]:
        return {"rule_id": rule, "severity": "warn", "t": t, "emitted_at": t, "text": "", "detail": "", "evidence": [],
                "cleared_at": cleared}

    cleared = cleared_prompt_ids([prompt("listen.dead_air", 12.5, 17.0), prompt("promise.rash", 30.0, None),
                                  {"rule_id": "old", "cleared_at": 3.0}])
    assert cleared == {"listen.dead_air@12.50"}
    shown = [("listen.dead_air@12.50", False), ("promise.rash@30.00", True), ("hold.apology@50.00", False)]
    assert prompt_outcome(shown, cleared) == PromptOutcome(shown=3, heeded=1, dismissed=1)


def test_weeks_run_monday_to_sunday_on_the_calls_own_clock() -> None:
    assert week_of_start("2026-11-29T23:30:00+08:00") == date(2026, 11, 23)  # a Sunday
    assert week_of_start("2026-11-30T00:10:00+08:00") == date(2026, 11, 30)
    assert week_of_start(None) is None and week_of_start("garbage-ish") is None
    assert week_bounds(date(2026, 11, 23)) == ("2026-11-23", "2026-11-30")
    assert last_whole_week(date(2026, 12, 2)) == date(2026, 11, 23)
