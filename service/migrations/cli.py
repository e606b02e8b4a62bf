"""`callwatch db-upgrade`, `db-downgrade`, `db-current`: the migrations by hand, against the configured
database (CALLWATCH_DATABASE_URL, or the SQLite file in CALLWATCH_DATA_DIR)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def _engine(url: str | None) -> Engine:
    from service.settings import Settings
    from service.persistence.engine import make_engine

    return make_engine(url or Settings().resolved_database_url)


def db_upgrade(
    to: str = typer.Option("head", "--to", help="revision to reach (default: the newest)"),
    url: Optional[str] = typer.Option(None, help="database URL (default: the configured one)"),
) -> None:
    """Bring the database schema up to a revision (the service also does this itself at start)."""
    from service.migrations import current_revision, upgrade

    engine = _engine(url)
    before = current_revision(engine)
    upgrade(engine, to)
    typer.echo(f"{engine.url.render_as_string(hide_password=True)}: {before or 'none'} -> {current_revision(engine)}")


def db_downgrade(
    to: str = typer.Option(..., "--to", help='revision to go back to; "base" drops every callwatch table'),
    url: Optional[str] = typer.Option(None, help="database URL (default: the configured one)"),
) -> None:
    """Undo schema revisions down to --to (for going back to an older callwatch; data in dropped columns is lost)."""
    from service.migrations import current_revision, downgrade

    engine = _engine(url)
    before = current_revision(engine)
    downgrade(engine, to)
    typer.echo(f"{engine.url.render_as_string(hide_password=True)}: {before or 'none'} -> {current_revision(engine) or 'base'}")


def db_current(
    url: Optional[str] = typer.Option(None, help="database URL (default: the configured one)"),
) -> None:
    """Print the database's schema revision and the newest this callwatch knows."""
    from service.migrations import current_revision, head_revision

    engine = _engine(url)
    typer.echo(f"{engine.url.render_as_string(hide_password=True)}: at {current_revision(engine) or 'none'}, "
               f"newest {head_revision()}")
