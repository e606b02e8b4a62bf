"""The database schema's history as Alembic revisions, applied from code.

`upgrade_to_head(engine)` runs on every start (CallStore construction), so a deployment never runs a
migration tool by hand; `callwatch db-upgrade` / `db-downgrade` / `db-current` exist for operators who want
to (docs/database.md). The revisions live in `versions/`; `env.py` is Alembic's entry point.
"""

from service.migrations.runner import (
    BASELINE,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
    upgrade_to_head,
)

__all__ = ["BASELINE", "alembic_config", "current_revision", "downgrade", "head_revision", "upgrade",
           "upgrade_to_head"]
