"""What the QA tools that span calls are cut to for a tenant-scoped supervisor or QA key: its tenant's calls
(`audit_calls.tenant`) and the batches queued under its tenant (the batch's options), its calls named by the
ids its phone systems sent (call ids are per tenant, service/persistence/call_store.py). A supervisor that
leads teams is further cut to its teams' agents' calls: in the list, exports and re-audits, and in the jobs of
the batches it opens (a job of another team's call names no call). A deployment-wide key without teams (tenant
None) is cut to nothing; a deployment-wide key names calls by their row keys. docs/security.md is the user's
guide."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request

from service.access.guard import Keys, call_key, may_see
from service.access.keys import Principal
from service.access.teams import TeamAgents, leads_teams
from service.audit.web.models import JobOut
from service.persistence.audit_jobs import AuditJobs
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore


def principal_of(request: Request) -> Principal:
    """Set by the audit routers' dependency (service/audit/web/auth.py); missing means a route without it, which
    must fail rather than serve everything."""
    principal: Principal = request.state.principal
    return principal


def tenant_of(request: Request) -> str | None:
    """The tenant this request's tools are cut to; None for a deployment-wide key (or this machine)."""
    return principal_of(request).tenant


def team_agents_of(request: Request, keys: Keys) -> TeamAgents | None:
    """The agents whose calls this request's tools are cut to: a team supervisor's teams' (from the keys file
    as it is now); None for every other key (cut by tenant alone)."""
    principal = principal_of(request)
    return keys.team_book(principal).members(principal.teams) if leads_teams(principal) else None


def may_open_batch(store: CallStore, tenant: str | None, batch_id: str) -> bool:
    """A deployment-wide key opens every batch; a tenant-scoped one only those queued under its tenant."""
    return tenant is None or AuditJobs(store.db).batch_tenant(batch_id) == tenant


def scoped_jobs(store: CallStore, tenant: str | None, agents: TeamAgents | None, jobs: list[JobOut]) -> list[JobOut]:
    """Jobs as a key of `tenant` (and, for a team supervisor, of `agents`) may see them: a job whose call is
    not one it may see (another team's agent's; skipped because a call of another tenant, or of none, holds the
    same recording) names no call. Unchanged for a deployment-wide key without teams."""
    if tenant is None and agents is None:
        return jobs
    theirs = CallList(store.db).calls_within((j.call_id for j in jobs if j.call_id), tenant, agents)
    return [j if j.call_id is None or j.call_id in theirs else j.model_copy(update={"call_id": None}) for j in jobs]


class HiddenCall(KeyError):
    """A call id that names no call the principal may see (in its tenant, for a tenant-scoped one; of its
    teams' agents, for a team supervisor)."""


def call_keys(keys: Keys, store: CallStore, principal: Principal, call_ids: Iterable[str]) -> dict[str, str]:
    """{row key: the id as named} of the calls `call_ids` name for the principal (call ids are per tenant:
    a tenant-scoped one names its tenant's ids). Raises HiddenCall with the first id naming no call it may
    see (or none at all)."""
    teams = keys.team_book(principal)
    out: dict[str, str] = {}
    for call_id in call_ids:
        key = call_key(store, principal, call_id)
        if key is None or not may_see(principal, store.owner(key), teams):
            raise HiddenCall(call_id)
        out[key] = call_id
    return out
