"""`callwatch audit FILES_OR_FOLDERS... [--rules FILE] [--format json|csv|html] [--out DIR]`,
`callwatch reaudit --rules FILE ...` and `callwatch audit-worker [--concurrency N]`.

The lead registers these on the main typer app; `run_batch` is the body of `audit`, shared with the
tests and the benchmark (which bring their own runtime). With CALLWATCH_AUDIT_ENGINE=celery, `audit` loads
no models: it queues the batch for the audit workers, follows it in the database and writes the reports.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from service.audit.outputs.files import FORMATS, ReportWriter
from service.audit.web.models import AuditOptions, CallQuery, RecordingMeta

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
POOLS = ("threads", "solo")


@dataclass
class SubmitOnly:
    """What `audit` needs when workers elsewhere do the auditing: settings, the store, the deployment's
    rules; no models."""

    settings: Any
    store: Any
    rule_book: Any

    @classmethod
    def load(cls, settings: Any) -> "SubmitOnly":
        from rules.config import load_rules_config
        from rules.engine import RuleBook
        from service.persistence.call_store import CallStore

        return cls(settings, CallStore.from_settings(settings), RuleBook(load_rules_config(settings.rules_file)))

    def close(self) -> None:
        self.store.close()


async def run_batch(
    runtime: Any,
    inputs: list[Path],
    *,
    out_dir: Path,
    formats: list[str],
    rules: Path | None = None,
    agent_channel: int = 0,
    beam_size: int | None = None,
    workers: int | None = None,
    meta: RecordingMeta | None = None,
    show_progress: bool = True,
    max_seconds: float | None = None,
) -> dict[str, Any]:
    """Audit every recording under `inputs`, write its reports into `out_dir` as it finishes, then the batch
    summary. Returns the summary (with `exit_code`)."""
    from service.audit.intake.sources import recordings
    from service.audit.jobs.queue import AuditQueue
    from service.audit.outputs.report import call_report
    from service.audit.running.rulesets import book_from_file
    from service.pii import masked

    book, rules_name, rules_text = book_from_file(rules, runtime)
    files = recordings(inputs, meta)
    options = AuditOptions(agent_channel=agent_channel, beam_size=beam_size, rules_name=rules_name,
                           max_seconds=max_seconds or runtime.settings.max_call_s)
    writer = ReportWriter(out_dir, formats, book.names)
    queue = AuditQueue(runtime, workers)
    started = time.perf_counter()
    bar = _Bar(len(files)) if show_progress else None

    def on_job(batch_id: str, job: Any, result: Any) -> None:
        if bar is not None:
            bar.update(job)
        if result is None:
            return
        source = result.source or Path(job.file_name)
        if result.state in ("done", "skipped") and result.call_id:
            report = masked(call_report(runtime.store, result.call_id), runtime.settings.mask_pii)
            writer.write_call(source, result.state, report)
        else:
            writer.write_failure(source, result.error_code, result.error)
            if bar is not None:
                bar.note(f"✗ {result.error}")

    queue.listen(on_job)
    try:
        batch_id = await queue.submit(files, options, book, source="cli", rules_text=rules_text)
        results = await queue.wait(batch_id)
    finally:
        await queue.close()
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - started
    audio = sum(r.audio_seconds or 0.0 for r in results.values() if r.state == "done")
    failed = sum(1 for r in results.values() if r.state == "failed")
    summary_paths = writer.write_summary({
        "batch_id": batch_id, "rules": rules_name, "wall_seconds": round(wall, 2), "audio_seconds": round(audio, 2),
        "speed_x_realtime": round(audio / wall, 2) if wall > 0 and audio else None,
    })
    return {"batch_id": batch_id, "files": len(files), "failed": failed, "wall_seconds": wall, "audio_seconds": audio,
            "summary": {k: str(v) for k, v in summary_paths.items()},
            "exit_code": EXIT_SOME_FAILED if failed else EXIT_OK}


class _Bar:
    """A progress bar over the batch (a running file counts by how far its transcript has got)."""

    def __init__(self, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.total = total
        self.progress = Progress(TextColumn("[bold]质检"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                 MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
                                 transient=False, console=None)
        self.task = self.progress.add_task("", total=max(total, 1))
        self.running: dict[str, float] = {}
        self.finished = 0
        self.progress.start()

    def update(self, job: Any) -> None:
        if job.state == "running":
            self.running[job.job_id] = job.progress
        elif job.state in ("done", "skipped", "failed"):
            self.running.pop(job.job_id, None)
            self.finished += 1
        self.progress.update(self.task, completed=self.finished + sum(self.running.values()),
                             description=job.file_name)

    def note(self, text: str) -> None:
        self.progress.console.print(text)

    def close(self) -> None:
        self.progress.update(self.task, completed=self.finished, description="")
        self.progress.stop()


def audit(
    paths: list[Path] = typer.Argument(..., help="recordings (WAV, MP3, …) and folders of recordings"),
    rules: Optional[Path] = typer.Option(None, "--rules", help="rules YAML merged over the defaults (default: the deployment's)"),
    formats: list[str] = typer.Option(["json"], "--format", help="json, csv or html; repeat for several"),
    out: Path = typer.Option(Path("audit-reports"), "--out", help="folder for the reports and the batch summary"),
    agent_right: bool = typer.Option(False, "--agent-right", help="stereo recordings hold the agent on the right channel"),
    beam_size: Optional[int] = typer.Option(None, "--beam-size", min=1, max=10, help="beam of the pass that hears the recording (default: CALLWATCH_AUDIT_BEAM_SIZE, else CALLWATCH_SECOND_PASS_BEAM_SIZE)"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=32, help="recordings in flight (default: cores + 1)"),
    agent_id: Optional[str] = typer.Option(None, "--agent", help="agent id for every file (metadata CSV and file names otherwise)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Audit recorded calls: one report per recording (named after it) and a batch summary in --out.

    Metadata (agent, direction, start time, events) comes from a CSV beside the files, the file names, or
    --agent. A file that cannot be audited fails alone, with its reason in summary.json / summary.csv."""
    from rules.config import RulesConfigError
    from service.runtime import Runtime
    from service.settings import Settings

    bad = [f for f in formats if f not in FORMATS]
    if bad:
        typer.echo(f"--format must be one of {', '.join(FORMATS)} (got {', '.join(bad)})", err=True)
        raise typer.Exit(EXIT_USAGE)
    missing = [p for p in paths if not p.exists()]
    if missing:
        typer.echo(f"not found: {', '.join(map(str, missing))}", err=True)
        raise typer.Exit(EXIT_USAGE)
    if rules is not None:
        try:
            from rules.config import load_rules_config

            load_rules_config(rules)
        except RulesConfigError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(EXIT_USAGE)
    settings = Settings()
    runtime = (SubmitOnly.load(settings) if settings.audit_engine == "celery"
               else Runtime.load(settings, serves_live_calls=False))
    try:
        summary = asyncio.run(run_batch(
            runtime, paths, out_dir=out, formats=formats, rules=rules, agent_channel=1 if agent_right else 0,
            beam_size=beam_size, workers=workers, meta=RecordingMeta(agent_id=agent_id) if agent_id else None,
            show_progress=not quiet and sys.stderr.isatty(),
        ))
    finally:
        runtime.close()
    speed = summary["audio_seconds"] / summary["wall_seconds"] if summary["wall_seconds"] else 0
    typer.echo(f"{summary['files']} recording(s), {summary['failed']} failed, {summary['audio_seconds']:.0f} s of audio "
               f"in {summary['wall_seconds']:.0f} s ({speed:.1f}× real time); summary: {summary['summary']['summary.json']}")
    raise typer.Exit(summary["exit_code"])


def audit_worker(
    concurrency: int = typer.Option(0, "--concurrency", min=0, max=64,
                                    help="recordings in flight in this process (default: CALLWATCH_AUDIT_WORKERS, or cores + 1)"),
    pool: str = typer.Option("threads", "--pool", help="threads: the files in flight share the one recogniser; solo: one at a time"),
    name: Optional[str] = typer.Option(None, "--name", help="Celery node name (default audit<pid>@<host>)"),
    loglevel: str = typer.Option("INFO", "--loglevel", help="DEBUG, INFO, WARNING, ERROR"),
) -> None:
    """Audit recordings queued by the server or `callwatch audit` (CALLWATCH_AUDIT_ENGINE=celery), from the
    broker at CALLWATCH_AUDIT_BROKER_URL, with the models loaded once. Run one per machine (or more); the
    database and the data dir must be the server's (shared storage on other machines)."""
    from service.audit.jobs.queue import default_workers
    from service.audit.jobs.worker import run_worker
    from service.runtime import Runtime
    from service.settings import Settings

    if pool not in POOLS:
        typer.echo(f"--pool must be one of {', '.join(POOLS)} (got {pool})", err=True)
        raise typer.Exit(EXIT_USAGE)
    settings = Settings()
    runtime = Runtime.load(settings, serves_live_calls=False)
    try:
        in_flight = 1 if pool == "solo" else (concurrency or settings.audit_workers or default_workers())
        code = run_worker(runtime, concurrency=in_flight, pool=pool, name=name, loglevel=loglevel)
    finally:
        runtime.close()
    raise typer.Exit(code)


def reaudit(
    rules: Path = typer.Option(..., "--rules", help="rules YAML to try (merged over the defaults)"),
    agent_id: Optional[str] = typer.Option(None, "--agent"),
    date_from: Optional[str] = typer.Option(None, "--from", help="ISO date, inclusive"),
    date_to: Optional[str] = typer.Option(None, "--to", help="ISO date, inclusive"),
    apply: bool = typer.Option(False, "--apply", help="store the new reports (default: only compare)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the comparison as CSV here"),
) -> None:
    """Re-run the rules (not the recogniser) over stored calls with another rules file, and compare scores."""
    from rules.config import read_rules_file
    from service.audit.running.reaudit import comparison_csv, reaudit_calls
    from service.settings import Settings
    from service.persistence.call_store import CallStore

    store = CallStore.from_settings(Settings())
    try:
        text = read_rules_file(rules)
        result = reaudit_calls(store, text, rules.name, query=CallQuery(agent_id=agent_id, date_from=date_from,
                                                                        date_to=date_to, limit=500), apply=apply)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE)
    if out is not None:
        out.write_text(comparison_csv(result), encoding="utf-8")
    typer.echo(json.dumps(result.model_dump(exclude={"rows"}), ensure_ascii=False))
