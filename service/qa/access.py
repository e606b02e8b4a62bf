"""Who may see and do what in the review workflow (docs/qa.md, Roles), decided on whose review it is: the
call's tenant and agent, and the agent's team from the keys file (service/access/teams.py).

- A reviewer (role `qa` or `supervisor`) sees the reviews of its tenant's calls (without a tenant: every
  call's), as it sees those calls in the QA tools; a supervisor that leads `teams` only those of its teams'
  agents. QA users are not cut by team: they review for the whole tenant.
- A ruling is a supervisor's, on a dispute it sees: a team supervisor rules for its teams' agents, one
  without teams for every agent of its tenant (today's model: it already sees and coaches all of them).
- An agent sees its own submitted reviews: its agent id, in its tenant (an agent key without a tenant: in
  every tenant, as for its own calls).

Who sees which call by tenant and team is one rule, `sees_agent` (service/access/teams.py), which the live
board, the call REST and the QA tools apply too. Everything a principal may not see is answered as if it did not exist (404), so ids do not leak.
"""

from __future__ import annotations

from service.access.keys import Principal
from service.access.teams import TeamBook, sees_agent
from service.access.teams import leads_teams as leads_teams  # re-exported: the QA routers import it from here

REVIEWER_ROLES = ("supervisor", "qa")
RULER_ROLES = ("supervisor",)
AGENT_ROLES = ("agent",)


def sees_review(principal: Principal, tenant: str | None, agent_id: str, teams: TeamBook) -> bool:
    """Whether a reviewer sees (and may work) the review of a call of `tenant`'s agent `agent_id`: exactly
    when it sees the call itself (this machine too, where no reviewer has a key; docs/security.md)."""
    return principal.role in (*REVIEWER_ROLES, "local") and sees_agent(principal, tenant, agent_id, teams)


def may_rule(principal: Principal, tenant: str | None, agent_id: str, teams: TeamBook) -> bool:
    """Whether a principal may uphold or overturn a dispute of that agent."""
    return principal.role in (*RULER_ROLES, "local") and sees_review(principal, tenant, agent_id, teams)


def owns(principal: Principal, tenant: str | None, agent_id: str) -> bool:
    """Whether the review is of one of the agent's own calls."""
    return (principal.role in AGENT_ROLES and agent_id == principal.name
            and (principal.tenant is None or tenant == principal.tenant))


def reviewer_scope(principal: Principal, teams: TeamBook) -> tuple[str | None, set[str] | None]:
    """What a reviewer's lists are narrowed to in the database: (tenant, agent ids), None for no limit. A
    superset where teams are involved; `sees_review` decides per review."""
    return principal.tenant, teams.agent_ids_in(principal.teams) if leads_teams(principal) else None


# ---------------------------------------------------------------- sampling plans and calibration


def sees_plan(principal: Principal, tenant: str | None, teams: tuple[str, ...] | None) -> bool:
    """Whether a supervisor sees (and may run and change) a sampling plan of `tenant` over `teams` (None: every
    agent): one of its tenant (a deployment-wide one: every plan); a team supervisor only a plan over teams
    it leads, since the plan's picks show those agents' calls."""
    if principal.role == "local":
        return True
    if principal.role not in RULER_ROLES:
        return False
    if principal.tenant is not None and tenant != principal.tenant:
        return False
    if leads_teams(principal):
        return teams is not None and set(teams) <= set(principal.teams)
    return True


def plan_reviewer_refusal(reviewer: Principal | None, name: str, tenant: str | None,
                          teams: tuple[str, ...] | None) -> str | None:
    """Why `name` cannot review a plan's picks (None: it can). A reviewer is a key of role qa or supervisor of
    the plan's own tenant (a deployment-wide plan's: a deployment-wide key), able to open the review of every
    call the plan may pick: a team supervisor only for a plan over teams it leads."""
    if reviewer is None:
        return f"{name!r} is no reviewer's key (role qa or supervisor) of {_tenant_words(tenant)}"
    if leads_teams(reviewer) and (teams is None or not set(teams) <= set(reviewer.teams)):
        return (f"{name!r} leads only {', '.join(reviewer.teams)}: it could not open every call this plan may "
                "pick")
    return None


def calibration_reviewer_refusal(reviewer: Principal | None, name: str, scope_tenant: str | None,
                                 call_tenant: str | None, agent_id: str, teams: TeamBook) -> str | None:
    """Why `name` cannot calibrate on a call (None: it can): a reviewer's key of the supervisor's own tenant
    that sees the call's review."""
    if reviewer is None:
        return f"{name!r} is no reviewer's key (role qa or supervisor) of {_tenant_words(scope_tenant)}"
    if not sees_review(reviewer, call_tenant, agent_id, teams):
        return f"{name!r} may not see this call (another team's agent)"
    return None


def _tenant_words(tenant: str | None) -> str:
    return f"tenant {tenant!r}" if tenant is not None else "the whole deployment (a key without a tenant)"
