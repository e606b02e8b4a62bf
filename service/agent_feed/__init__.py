"""The agent feed: live results of each agent's calls, pushed to the agent screen and the supervisor board.

- `hub`: `AgentFeedHub`, which the ingest path publishes into: subscriptions, per-call state and history,
  resume, watch and dismiss; `feed_hub_for` builds the one a server process runs.
- `buses`: how a hub's messages reach the other instances' hubs (over Redis with CALLWATCH_REDIS_URL).
- `connection`: the websocket (`/v1/agent-feed`, one `FeedConnection` per browser) and `/v1/live-calls`.
- `pages`: the agent screen and the supervisor board, with the names table in each page, and their static files.

docs/agent-feed.md describes the feed; its messages are modelled in wire/agent_feed.py. `router` serves the
socket and the pages.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.agent_feed import connection, pages

router = APIRouter()
router.include_router(connection.router)
router.include_router(pages.router)
