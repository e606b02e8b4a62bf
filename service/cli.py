"""The `callwatch` command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="callwatch: Mandarin call monitoring")


@app.callback()
def _process_setup() -> None:
    """Before any command and its threads: the malloc arena cap (CALLWATCH_MALLOC_ARENAS)."""
    from service.malloc_arenas import limit_malloc_arenas
    from service.settings import Settings

    limit_malloc_arenas(Settings().malloc_arenas)

DEFAULT_INGEST_URL = "ws://127.0.0.1:8000/v1/ingest"


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
) -> None:
    """Run the service (ingest websocket, REST, pages) with settings from CALLWATCH_* variables. SIGTERM ends
    the calls in progress as `interrupted` (last finals stored) before the process exits."""
    from service.serving import serve as run_service

    run_service(host, port)


@app.command()
def stream(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="WAV/MP3 recording: stereo agent-left/customer-right, or mono"),
    url: str = typer.Option(DEFAULT_INGEST_URL, help="ingest websocket of a running callwatch serve"),
    realtime: bool = typer.Option(False, "--realtime", help="send audio at the pace it was spoken (without it: as fast as a live call may run, 5 s ahead of real time; to transcribe a recording fast, audit it)"),
    as_json: bool = typer.Option(False, "--json", help="print one result message per line as JSON"),
    call_id: Optional[str] = typer.Option(None, help="call id (default: file name plus a timestamp)"),
    agent_id: str = typer.Option("agent-demo", help="agent the call belongs to"),
    speed: float = typer.Option(1.0, help="with --realtime, play this many times faster"),
    swap_channels: bool = typer.Option(False, help="the recording has the customer on the left"),
    encoding: str = typer.Option("pcm_s16le", help="wire encoding: pcm_s16le, mulaw or alaw"),
) -> None:
    """Play a recording into callwatch as a live call and print the transcript as it forms."""
    from clients.ingest_client import TranscriptPrinter, stream_file

    printer = TranscriptPrinter(as_json=as_json, out=sys.stdout)
    try:
        ended = asyncio.run(
            stream_file(
                file, url=url, realtime=realtime, speed=speed, call_id=call_id, agent_id=agent_id,
                swap_channels=swap_channels, encoding=encoding, on_result=printer,
            )
        )
    except (OSError, ConnectionError) as exc:
        typer.echo(f"cannot reach {url}: {exc}. Is `callwatch serve` running?", err=True)
        raise typer.Exit(2)
    raise typer.Exit(0 if ended and ended.get("status") == "completed" else 1)


@app.command("audit-timeline")
def audit_timeline(
    timeline: Path = typer.Argument(..., help="call timeline JSON (docs/timeline.md)"),
    rules: Optional[Path] = typer.Option(None, "--rules", help="deployment rules YAML, merged over the defaults"),
) -> None:
    """Judge one call timeline against the rules; print the report (findings, score, figures) as JSON."""
    from rules.cli import audit_timeline_main

    raise typer.Exit(audit_timeline_main(timeline, rules))


@app.command()
def emotion() -> None:
    """Read customer utterances, one per line, on standard input; print one JSON object per line
    (label, valence, confidence, polarity)."""
    from models.emotion import SentimentClassifier
    from models.emotion.cli import emotion_cli_main
    from service.runtime import sentiment_config
    from service.settings import Settings

    classifier = SentimentClassifier.load(config=sentiment_config(Settings()))
    raise typer.Exit(emotion_cli_main(sys.stdin, sys.stdout, classifier))


@app.command()
def setup() -> None:
    """Build the model caches from the installed packages (no download) and check their hashes."""
    from service.runtime import prepare_models
    from service.settings import Settings

    for line in prepare_models(Settings()):
        typer.echo(line)


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    exit_after: bool = typer.Option(False, "--exit", help="play the call once, then stop the service"),
    screen_wait: float = typer.Option(60.0, "--screen-wait", help="seconds to wait for the agent screen before playing the call anyway"),
) -> None:
    """Start the service on the embedded defaults, print one link that opens the agent screen signed in, and play
    the bundled sample call into it in real time once that screen is connected (or after --screen-wait
    seconds). At a terminal, Enter plays it again and q stops; each play ends with the call's report link."""
    from service.demo.run import run_demo
    from service.demo.waiting import Keyboard
    from service.settings import Settings

    # Without a terminal (tests, CI, a container without -t) nobody can press Enter: no prompts.
    keyboard = Keyboard(sys.stdin) if sys.stdin.isatty() and not exit_after else None
    raise typer.Exit(run_demo(Settings(), host, port, out=sys.stdout, keyboard=keyboard, exit_after=exit_after,
                              screen_wait_s=screen_wait))


def _register_audit_commands() -> None:
    from service.audit.cli import audit as audit_command
    from service.audit.cli import audit_worker as audit_worker_command
    from service.audit.cli import reaudit as reaudit_command

    app.command("audit")(audit_command)
    app.command("reaudit")(reaudit_command)
    app.command("audit-worker")(audit_worker_command)


_register_audit_commands()


def _register_database_commands() -> None:
    from service.migrations.cli import db_current, db_downgrade, db_upgrade
    from service.store_cli import calls_interrupt

    app.command("db-upgrade")(db_upgrade)
    app.command("db-downgrade")(db_downgrade)
    app.command("db-current")(db_current)
    app.command("calls-interrupt")(calls_interrupt)


_register_database_commands()


def _register_qa_commands() -> None:
    from service.qa.cli import qa_sample

    app.command("qa-sample")(qa_sample)


_register_qa_commands()


def _register_keys_commands() -> None:
    from service.access.cli import keys_app

    app.add_typer(keys_app, name="keys")


_register_keys_commands()

if __name__ == "__main__":
    app()
