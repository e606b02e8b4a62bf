"""Alembic's entry point: migrate the connection `service.migrations.runner` hands over.

Run from code only (`upgrade_to_head`, `callwatch db-upgrade`); the target metadata is the live table
definitions, so `alembic.command.revision(alembic_config(conn), autogenerate=True)` can draft a revision.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from service.persistence.search import FTS_TABLE
from service.persistence.tables import audit_metadata, metadata
from service.persistence.qa_reviews import qa_metadata
from service.persistence.qa_work_tables import qa_work_metadata


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # The full-text index is dialect-specific DDL written by hand in the revisions (FTS5's virtual table and
    # its shadow tables on SQLite), not a table of the metadata.
    return not (type_ == "table" and name is not None and name.startswith(FTS_TABLE))


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through service.migrations (upgrade_to_head, callwatch db-upgrade)")
    context.configure(
        connection=connection,
        target_metadata=[metadata, audit_metadata, qa_metadata, qa_work_metadata],
        include_object=_include,
        # SQLite cannot ALTER most things; batch mode rebuilds the table where it must.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported: the baseline inspects the database")
run_migrations()
