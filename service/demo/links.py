"""The links the demo (and scripts/screenshots.py) print and open: the pages signed in by a fragment, and a
call's report."""

from __future__ import annotations

from urllib.parse import quote, urlencode


def sign_in_fragment(id_field: str, name: str, key: str) -> str:
    """What follows `#` in a link that signs a page in: `agent_id=…&key=…` for the agent screen,
    `supervisor=…&key=…` for the board. A fragment is never sent by the browser (so the key is in no request
    and no log), and the page takes it off the address bar (docs/agent-feed.md § Access)."""
    return urlencode({id_field: name, "key": key})


def agent_link(base_url: str, agent_id: str, key: str) -> str:
    """The agent screen, signed in."""
    return f"{base_url}/agent#{sign_in_fragment('agent_id', agent_id, key)}"


def report_link(base_url: str, call_id: str) -> str:
    """The call's QA report page (docs/report.md)."""
    return f"{base_url}/audit/calls/{quote(call_id, safe='')}"
