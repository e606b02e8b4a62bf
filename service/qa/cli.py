"""`callwatch qa-sample PLAN_ID [--week DAY]`: run a sampling plan from the command line (a cron job on Monday
mornings), as `POST /v1/qa/plans/{plan_id}/runs` does. Idempotent like it: run twice over the same week's
calls, the second run picks nothing new. The agents' teams come from the configured keys file."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Optional

import typer


def qa_sample(
    plan_id: str = typer.Argument(..., help="the plan's id (GET /v1/qa/plans lists them)"),
    week: Optional[str] = typer.Option(
        None, "--week", help="any day of the week to sample, YYYY-MM-DD (default: the last whole week, UTC)"),
    url: Optional[str] = typer.Option(None, help="database URL (default: the configured one)"),
) -> None:
    """Run a QA sampling plan over one week: pick the calls it has not picked yet, assign them to its reviewers,
    and print what it picked and why."""
    from service.access.keys import Principal
    from service.access.ring import KeyRing
    from service.qa.errors import NotFound
    from service.persistence.qa_plans import run_plan
    from service.qa.weeks import last_whole_week, monday_of
    from service.settings import Settings
    from service.persistence.call_store import CallStore

    try:
        day = date.fromisoformat(week) if week is not None else None
    except ValueError:
        raise typer.BadParameter(f"{week!r} is no date (YYYY-MM-DD)", param_hint="--week") from None
    monday = monday_of(day) if day is not None else last_whole_week(datetime.now(timezone.utc).date())
    settings = Settings()
    store = CallStore(url or settings.resolved_database_url, retry_s=settings.database_retry_s,
                      instance=settings.instance_id)
    try:
        done = run_plan(store, plan_id, monday, Principal(role="cli", name="callwatch qa-sample"),
                        KeyRing().teams(settings))
    except NotFound:
        typer.echo(f"no plan {plan_id!r}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.db.engine.dispose()
    typer.echo(f"plan {done.plan_id}, week of {done.week}: {done.calls_seen} call(s) in scope, {done.picked} picked now")
    for pick in done.picks:
        why = "; ".join(f"{r.code}: {r.detail}" for r in pick.reasons)
        typer.echo(f"  {pick.call_id}\tagent {pick.agent_id}\t-> {pick.reviewer}\t{why}")
    totals = ", ".join(f"{reviewer} {n}" for reviewer, n in done.week_picks.items()) or "none"
    typer.echo(f"the week's picks per reviewer: {totals}")
