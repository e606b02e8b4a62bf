"""Which team each agent is in, from the keys file: the agent principals' `team` (docs/security.md, Teams).

An agent is known by (tenant, agent id), as the keys file lists it; a call names its agent the same way
(`calls.tenant`, `calls.agent_id`). An agent principal without a tenant stands for that agent id in every
tenant, unless the tenant lists the agent itself: the more specific entry wins, as it does for what the agent
may see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from service.access.keysfile import KeysFile

AgentKey = tuple[str | None, str]  # (tenant, agent id)


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


NO_TEAMS = TeamBook()
