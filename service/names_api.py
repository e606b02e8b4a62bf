"""GET /v1/rules/names: the deployment's table of display names (rules/names.py), as JSON.

The agent screen, the supervisor board and the QA pages have the same table embedded by the server; this is
for every other client (an integrator's own screen, a CRM widget) that shows findings or prompts. Like the
rest of /v1 it answers keys (any role), or loopback where no keys are configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends

from rules.names import NameTable
from service.access.guard import NAMES_ROLES, require
from service.app_state import RuntimeDep

# service.runtime imports the agent feed, whose pages import this module: the type for the checker only.
if TYPE_CHECKING:
    from service.runtime import Runtime

router = APIRouter(tags=["rules"])

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no key"},
    403: {"description": "a key that does not admit you"},
}


def names_of(runtime: Runtime) -> NameTable:
    """The names of the rules this process judges with (the deployment's rules file over the defaults)."""
    return runtime.rule_book.names


@router.get("/v1/rules/names", response_model=NameTable, responses=_REFUSALS,
            dependencies=[Depends(require(NAMES_ROLES))])
async def rule_names(runtime: RuntimeDep) -> NameTable:
    """What every page calls each rule id, severity and recovery step; an id missing here is shown as itself."""
    return names_of(runtime)
