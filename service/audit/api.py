"""REST for QA audits under /v1/audit: batches (multipart upload, or server-side paths for bulk), jobs,
the call list query, reports (JSON, HTML, CSV, the audio) and re-audits."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Optional

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from rules.config import RulesConfigError
from service.audit.auth import require_supervisor
from service.audit.exports import batch_csv, batch_row, call_csv
from service.audit.ids import new_id
from service.audit.metadata import MetadataError, read_metadata_csv, resolve_meta
from service.audit.models import (
    AuditOptions, BatchOut, CallPage, CallQuery, JobOut, PathBatchRequest, ReauditOut, ReauditRequest, RecordingMeta,
)
from service.audit.query import list_calls
from service.audit.queue import AuditQueue, NewFile
from service.audit.reaudit import reaudit_calls
from service.audit.render import report_html
from service.audit.report import ReportNotFound, call_report
from service.audit.rulesets import book_from_text
from service.audit.tables import audit_calls
from service.pii import masked

router = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=[Depends(require_supervisor)])
UPLOAD_CHUNK = 1 << 20
_SAFE_NAME = re.compile(r"[^\w.\-()\[\] ]+", re.UNICODE)
REPORT_HEADERS = {
    # The report page's script and player come from this server; matplotlib's SVG styles itself inline.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self'; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
}


def queue_for(request: Request) -> AuditQueue:
    """The app's audit queue, made on first use (and jobs a stopped server left behind queued again)."""
    state = request.app.state
    queue = getattr(state, "audit_queue", None)
    if queue is None:
        runtime = state.runtime
        queue = AuditQueue(runtime, runtime.settings.audit_workers or None)
        state.audit_queue = queue
        asyncio.get_running_loop().create_task(queue.resume())
    return queue


def _options(request: Request, agent_channel: int, rules_name: str) -> AuditOptions:
    settings = request.app.state.runtime.settings
    return AuditOptions(
        agent_channel=agent_channel,  # type: ignore[arg-type]
        max_seconds=getattr(settings, "max_call_s", 4 * 3600),
        max_bytes=settings.audit_max_file_bytes,
        beam_size=settings.audit_beam_size,
        rules_name=rules_name,
    )


def _upload_dir(request: Request) -> Path:
    settings = request.app.state.runtime.settings
    return Path(settings.data_dir).resolve() / "audit" / "uploads"


def _import_roots(request: Request) -> list[Path]:
    """Folders a path batch may read from: CALLWATCH_AUDIT_IMPORT_ROOTS, or the data dir's `import` folder."""
    settings = request.app.state.runtime.settings
    roots = settings.audit_import_roots or [Path(settings.data_dir) / "import"]
    return [Path(r).resolve() for r in roots]


def _rules(text: str | None, name: str, request: Request) -> Any:
    try:
        return book_from_text(text, name, request.app.state.runtime)
    except RulesConfigError as err:
        raise HTTPException(status_code=422, detail=str(err)) from None


@router.post("/batches", status_code=202, response_model=BatchOut)
async def upload_batch(
    request: Request,
    files: list[UploadFile] = File(..., description="recordings"),
    meta: Optional[str] = Form(None, description="JSON: RecordingMeta for every file, or {\"files\": {name: RecordingMeta}}"),
    metadata_csv: Optional[UploadFile] = File(None, description="metadata CSV (see docs/audit.md)"),
    rules: Optional[UploadFile] = File(None, description="rules YAML merged over the defaults"),
    agent_channel: int = Form(0, ge=0, le=1),
) -> BatchOut:
    """Upload recordings (multipart) and queue one job per file. Answers at once with the batch; poll
    GET /v1/audit/batches/{id} for progress."""
    queue = queue_for(request)
    rules_text = (await rules.read()).decode("utf-8") if rules is not None else None
    rules_name = (rules.filename or "rules.yaml") if rules is not None else "default"
    book = _rules(rules_text, rules_name, request)
    common, per_file = _parse_meta(meta)
    beside: dict[str, RecordingMeta] = {}
    folder = _upload_dir(request) / new_id()
    folder.mkdir(parents=True, exist_ok=True)
    if metadata_csv is not None:
        csv_path = folder / "metadata.csv"
        csv_path.write_bytes(await metadata_csv.read())
        try:
            beside = read_metadata_csv(csv_path)
        except MetadataError as err:
            raise HTTPException(status_code=422, detail=str(err)) from None
    options = _options(request, agent_channel, rules_name)
    items: list[NewFile] = []
    for n, upload in enumerate(files):
        name = _SAFE_NAME.sub("_", Path(upload.filename or f"recording-{n}").name) or f"recording-{n}"
        target = folder / f"{n:04d}" / name  # one folder each: two uploads of one name do not collide
        target.parent.mkdir()
        await _save(upload, target, options.max_bytes)
        file_meta = per_file.get(name) or common
        items.append(NewFile(target, name, resolve_meta(name, beside, file_meta)))
    batch_id = await queue.submit(items, options, book, source="upload", rules_text=rules_text)
    return queue.batch(batch_id)  # type: ignore[return-value]


async def _save(upload: UploadFile, target: Path, max_bytes: int) -> None:
    """Copy the upload; past the size limit stop copying (the job then fails as too large, alone)."""
    written = 0
    with target.open("wb") as out:
        while chunk := await upload.read(UPLOAD_CHUNK):
            out.write(chunk[: max(0, max_bytes + 1 - written)])
            written += len(chunk)
            if written > max_bytes:
                break


def _parse_meta(raw: str | None) -> tuple[RecordingMeta | None, dict[str, RecordingMeta]]:
    if not raw:
        return None, {}
    try:
        data = json.loads(raw)
        if isinstance(data, dict) and isinstance(data.get("files"), dict):
            return None, {k: RecordingMeta.model_validate(v) for k, v in data["files"].items()}
        return RecordingMeta.model_validate(data), {}
    except (ValueError, ValidationError) as err:
        raise HTTPException(status_code=422, detail=f"meta: {err}") from None


@router.post("/batches/paths", status_code=202, response_model=BatchOut)
async def path_batch(request: Request, body: PathBatchRequest) -> BatchOut:
    """Bulk: audit files already on the server (files or folders under an allowed import root)."""
    queue = queue_for(request)
    roots = _import_roots(request)
    paths: list[Path] = []
    for raw in body.paths:
        p = Path(raw).resolve()
        if not any(p == r or r in p.parents for r in roots):
            raise HTTPException(status_code=403, detail=f"{raw}: outside the import folders ({', '.join(map(str, roots))})")
        if not p.exists():
            raise HTTPException(status_code=404, detail=f"{raw}: not found")
        paths.append(p)
    rules_name = "rules.yaml" if body.rules else "default"
    book = _rules(body.rules, rules_name, request)
    from service.audit.sources import recordings

    items = recordings(paths, body.meta)
    batch_id = await queue.submit(items, _options(request, body.agent_channel, rules_name), book, source="path",
                                  rules_text=body.rules)
    return queue.batch(batch_id)  # type: ignore[return-value]


@router.get("/batches/{batch_id}", response_model=BatchOut)
async def get_batch(request: Request, batch_id: str) -> BatchOut:
    batch = await asyncio.to_thread(queue_for(request).batch, batch_id)
    if batch is None:
        raise HTTPException(status_code=404, detail="no such batch")
    return batch


@router.get("/batches/{batch_id}/summary.csv")
async def batch_summary_csv(request: Request, batch_id: str) -> Response:
    """The batch as a spreadsheet: one row per file (failed ones with their reason), one column per rule."""
    batch = await asyncio.to_thread(queue_for(request).batch, batch_id)
    if batch is None:
        raise HTTPException(status_code=404, detail="no such batch")
    store = request.app.state.runtime.store

    def rows() -> list[dict[str, Any]]:
        out = []
        for j in batch.jobs:
            report = call_report(store, j.call_id) if j.call_id and j.state in ("done", "skipped") else None
            out.append(batch_row(j.file_name, j.state, report, j.error))
        return out

    body = batch_csv(masked(await asyncio.to_thread(rows), request.app.state.runtime.settings.mask_pii))
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="batch-{batch_id[:8]}.csv"'})


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(request: Request, job_id: str) -> JobOut:
    job = await asyncio.to_thread(queue_for(request).job, job_id)
    if job is None:
        raise HTTPException(status_code=404, detail="no such job")
    return job


@router.get("/calls", response_model=CallPage)
async def calls_list(request: Request, q: CallQuery = Depends()) -> CallPage:
    """The call list: full-text search (`q`, Chinese), filters, sorting, pagination."""
    runtime = request.app.state.runtime
    queue_for(request)  # makes sure the audit tables exist
    await _maybe_sync(request)
    page = await asyncio.to_thread(list_calls, runtime.store.engine, q)
    return CallPage.model_validate(masked(page.model_dump(), runtime.settings.mask_pii))  # snippets quote calls


async def _maybe_sync(request: Request) -> None:
    """Pick up live calls that ended with a report, at most every 30 s (the list must stay fast)."""
    import time

    from service.audit.index import sync_index

    state = request.app.state
    now = time.monotonic()
    if now - getattr(state, "audit_synced_at", -1e9) > 30:
        state.audit_synced_at = now
        await asyncio.to_thread(sync_index, request.app.state.runtime.store.engine)


@router.get("/calls.csv")
async def calls_csv(request: Request, q: CallQuery = Depends()) -> Response:
    """The filtered call list as a spreadsheet (up to 10,000 calls), one column per rule."""
    store = request.app.state.runtime.store

    def rows() -> list[dict[str, Any]]:
        out, offset = [], 0
        while offset < 10_000:
            page = list_calls(store.engine, q.model_copy(update={"offset": offset, "limit": 500}))
            for r in page.rows:
                out.append(batch_row(r.file_name or r.call_id, "done", call_report(store, r.call_id)))
            offset += 500
            if offset >= page.total:
                break
        return out

    body = batch_csv(masked(await asyncio.to_thread(rows), request.app.state.runtime.settings.mask_pii))
    return Response(body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": 'attachment; filename="calls.csv"'})


def _report(request: Request, call_id: str) -> dict[str, Any]:
    try:
        runtime = request.app.state.runtime
        return masked(call_report(runtime.store, call_id), runtime.settings.mask_pii)
    except ReportNotFound:
        raise HTTPException(status_code=404, detail="no such call") from None


@router.get("/calls/{call_id}")
async def call_json(request: Request, call_id: str) -> JSONResponse:
    """One call's report (schema: docs/report.md)."""
    return JSONResponse(await asyncio.to_thread(_report, request, call_id))


@router.get("/calls/{call_id}/report.html", response_class=HTMLResponse)
async def call_html(request: Request, call_id: str) -> HTMLResponse:
    report = await asyncio.to_thread(_report, request, call_id)
    audio = f"/v1/audit/calls/{call_id}/audio" if _audio_path(request, call_id) else None
    body = await asyncio.to_thread(report_html, report, audio, back_link="/audit/calls", script_src="/audit/static/report.js")
    return HTMLResponse(body, headers=REPORT_HEADERS)


@router.get("/calls/{call_id}/report.csv")
async def call_report_csv(request: Request, call_id: str) -> Response:
    report = await asyncio.to_thread(_report, request, call_id)
    return Response(call_csv(report), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{call_id}.csv"'})


def _audio_path(request: Request, call_id: str) -> Path | None:
    with request.app.state.runtime.store.engine.connect() as conn:
        raw = conn.execute(select(audit_calls.c.source_path).where(audit_calls.c.call_id == call_id)).scalar()
    if not raw or not Path(raw).is_file():
        return None
    return Path(raw)


_AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".opus": "audio/ogg",
                ".flac": "audio/flac", ".m4a": "audio/mp4", ".aac": "audio/aac", ".webm": "audio/webm"}


@router.get("/calls/{call_id}/audio")
async def call_audio(request: Request, call_id: str) -> FileResponse:
    """The recording, for the report's player (range requests, so it can jump to a finding)."""
    path = await asyncio.to_thread(_audio_path, request, call_id)
    if path is None:
        raise HTTPException(status_code=404, detail="the recording is not available")
    return FileResponse(path, media_type=_AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"))


@router.post("/reaudit", response_model=ReauditOut)
async def reaudit(request: Request, body: ReauditRequest) -> ReauditOut:
    """Re-run the rules (not the recogniser) over stored calls with other rules; compare, or apply."""
    store = request.app.state.runtime.store
    queue_for(request)
    try:
        return await asyncio.to_thread(reaudit_calls, store, body.rules, "rules.yaml", call_ids=body.call_ids,
                                       query=body.query, apply=body.apply)
    except RulesConfigError as err:
        raise HTTPException(status_code=422, detail=str(err)) from None
    except KeyError as err:
        raise HTTPException(status_code=404, detail=f"no such call: {err}") from None
