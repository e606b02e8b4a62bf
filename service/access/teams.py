"""Which team each agent is in, from the keys file: the agent principals' `team` (docs/security.md, Teams);
and the one rule of who, by team, sees whose calls (`sees_agent`), which every surface applies: the QA
workflow, the live board and feed, the call REST and the QA tools.

An agent is known by (tenant, agent id), as the keys file lists it; a call names its agent the same way
(`calls.tenant`, `calls.agent_id`). An agent principal without a tenant stands for that agent id in every
tenant, unless the tenant lists the agent itself: the more specific entry wins, as it does for what the agent
may see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from service.access.keys import Principal
from service.access.keysfile import KeysFile

AgentKey = tuple[str | None, str]  # (tenant, agent id)


@dataclass(frozen=True)
class TeamAgents:
    """The agents of some teams, exactly, in the form a database filter takes: within each tenant the keys
    file names, the agent ids whose team (`TeamBook.team_of`) is one of them; within any other tenant, or
    none, the ids of the tenant-less entries in them."""

    by_tenant: dict[str, frozenset[str]]
    elsewhere: frozenset[str]

    def in_tenant(self, tenant: str | None) -> frozenset[str]:
        """The agent ids of these teams among `tenant`'s calls (None: calls of no tenant)."""
        return self.by_tenant.get(tenant, self.elsewhere) if tenant is not None else self.elsewhere


@dataclass(frozen=True)
class TeamBook:
    # Every agent principal, with its team or None: an agent listed without a team is in none, even where a
    # tenant-less entry of its id has one.
    agents: dict[AgentKey, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, keys: KeysFile) -> TeamBook:
        return cls({(p.effective_tenant, p.name): p.team for p in keys.principals if p.role == "agent"})

    def team_of(self, tenant: str | None, agent_id: str) -> str | None:
        """The team of agent `agent_id` of `tenant`; None: in no team (or not in the keys file)."""
        if (tenant, agent_id) in self.agents:
            return self.agents[(tenant, agent_id)]
        return self.agents.get((None, agent_id))

    def agent_ids_in(self, teams: Iterable[str]) -> set[str]:
        """The agent ids of any tenant with an entry in one of `teams`: every call of those teams' agents
        has one of these ids (a superset: `team_of` decides per call)."""
        wanted = set(teams)
        return {agent_id for (_tenant, agent_id), team in self.agents.items() if team in wanted}

    def members(self, teams: Iterable[str]) -> TeamAgents:
        """Exactly the agents `team_of` puts in one of `teams`, tenant by tenant."""
        wanted = set(teams)
        elsewhere = frozenset(a for (tenant, a), team in self.agents.items() if tenant is None and team in wanted)
        listed: dict[str, dict[str, str | None]] = {}
        for (tenant, a), team in self.agents.items():
            if tenant is not None:
                listed.setdefault(tenant, {})[a] = team
        by_tenant = {tenant: frozenset({a for a, team in own.items() if team in wanted}
                                       | {a for a in elsewhere if a not in own})
                     for tenant, own in listed.items()}
        return TeamAgents(by_tenant, elsewhere)


NO_TEAMS = TeamBook()


def leads_teams(principal: Principal) -> bool:
    """A supervisor with `teams`: cut to those teams' agents everywhere it looks."""
    return principal.role == "supervisor" and bool(principal.teams)


def sees_agent(principal: Principal, tenant: str | None, agent_id: str, teams: TeamBook) -> bool:
    """Whether a supervisor or QA user (or this machine, where no keys are configured) sees the calls of
    `tenant`'s agent `agent_id`: those of its tenant (without a tenant: of every tenant and of none), and, for
    a supervisor that leads teams, only its teams' agents. An agent in no team (or not in the keys file) is
    no team supervisor's. Other roles' own rules (an agent's own calls, an integrator's tenant) are not this."""
    if principal.role == "local":
        return True
    if principal.role not in ("supervisor", "qa"):
        return False
    if principal.tenant is not None and tenant != principal.tenant:
        return False
    if leads_teams(principal):
        return teams.team_of(tenant, agent_id) in principal.teams
    return True
