"""`callwatch calls-interrupt`: the live calls of an instance that died and is not coming back.

An instance marks its own calls interrupted when it starts again (CALLWATCH_INSTANCE_ID). One that never
does (a machine retired, a container re-created under another host name) leaves its calls 'live' in the
shared database; an operator lists the live calls per instance and closes those of the dead one.
"""

from __future__ import annotations

from typing import Optional

import typer


def calls_interrupt(
    instance: Optional[str] = typer.Option(
        None, "--instance", help="the dead instance's id (CALLWATCH_INSTANCE_ID); without it, only list live calls"),
    url: Optional[str] = typer.Option(None, help="database URL (default: the configured one)"),
) -> None:
    """List the live calls per instance, or mark those of --instance interrupted (an instance that died and
    will not start again under that id; a running one's calls get their right status when they end)."""
    from service.settings import Settings
    from service.persistence.call_store import CallStore

    settings = Settings()
    store = CallStore(url or settings.resolved_database_url, retry_s=settings.database_retry_s,
                      instance=settings.instance_id)
    try:
        if instance is None:
            live = store.live_calls_by_instance()
            if not live:
                typer.echo("no live calls")
            for group in live:
                typer.echo(f"{group.instance or '(none)'}\t{group.count} live call(s), the oldest received "
                           f"{group.oldest_received_at.isoformat(timespec='seconds')}")
            return
        marked = store.interrupt_calls_of(instance)
        typer.echo(f"{instance}: {marked} live call(s) marked interrupted")
    finally:
        store.close()
