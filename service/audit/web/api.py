"""REST for QA audits under /v1/audit: batches (multipart upload, or server-side paths for bulk), jobs,
the call list query, reports (JSON, HTML, CSV, the audio) and re-audits.

A tenant-scoped supervisor or QA key gets all of it cut to its tenant (service/audit/web/tenancy.py): what it
queues belongs to its tenant, and it lists, exports, re-audits and opens only its tenant's calls and batches;
a supervisor that leads teams, only its teams' agents' calls (in the batches it opens, jobs of other calls
name none).
Call ids are per tenant: such a key names and is shown the ids its phone systems sent; the store's row key
(which differs where two tenants sent the same id) stays inside.
Errors of the request keep FastAPI's own shape (a 422's `detail` is a list of `{loc, msg, type}`), as the
OpenAPI description says.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import ValidationError

from rules.config import RulesConfigError
from rules.engine import RuleBook
from rules.encodings import UndecodableText, decode_text
from service.access.guard import Keys, KeysDep
from service.app_state import AuditQueueDep, CallListSyncDep, RuntimeDep
from service.audit.intake.ids import new_id
from service.audit.intake.metadata import MetadataError, read_metadata_csv, resolve_meta
from service.audit.intake.sources import LinkLoop, inside, path_problem, real_path, recordings
from service.audit.jobs.queue import AuditQueue, NewFile
from service.audit.outputs.exports import batch_csv, batch_row, call_csv
from service.audit.outputs.render import report_html
from service.audit.outputs.report import ReportNotFound, call_report
from service.audit.running.reaudit import reaudit_calls
from service.audit.running.rulesets import book_from_text
from service.audit.web.auth import require_supervisor
from service.audit.web.models import (
    AuditOptions, BatchOut, CallPage, CallQuery, JobOut, PathBatchRequest, ReauditOut, ReauditRequest, RecordingMeta,
)
from service.audit.web.tenancy import (
    HiddenCall, call_keys, may_open_batch, principal_of, scoped_jobs, team_agents_of, tenant_of,
)
from service.json_depth import too_deep, too_deep_message
from service.names_api import names_of
from service.persistence.call_list import CallList
from service.persistence.call_store import CallStore
from service.pii import masked
from service.runtime import Runtime
from service.settings import Settings

router = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=[Depends(require_supervisor)])
UPLOAD_CHUNK = 1 << 20
_SAFE_NAME = re.compile(r"[^\w.\-()\[\] ]+", re.UNICODE)
REPORT_HEADERS = {
    # The report page's script and player come from this server; matplotlib's SVG styles itself inline.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self'; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
}
_AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".opus": "audio/ogg",
                ".flac": "audio/flac", ".m4a": "audio/mp4", ".aac": "audio/aac", ".webm": "audio/webm"}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
AUDIO_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "content": {t: _BINARY for t in sorted({*_AUDIO_TYPES.values(), "application/octet-stream"})}}
    for status, what in ((200, "the recording"), (206, "the requested range of the recording"))
}


class CSVResponse(Response):
    """A spreadsheet download; declared as text/csv in the OpenAPI description (charset utf-8 is added)."""

    media_type = "text/csv"


def unprocessable(loc: tuple[str | int, ...], message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own request validation errors (HTTPValidationError)."""
    return HTTPException(status_code=422, detail=[{"loc": list(loc), "msg": message, "type": "value_error"}])


def query_params(model: type[CallQuery]) -> Callable[..., CallQuery]:
    """`model` from the query string, as `Depends(model)` would, but a value its validators refuse (a
    `date_to` that is no date) is a 422 naming the parameter instead of an error inside the dependency (500)."""

    def dependency(**values: Any) -> CallQuery:
        try:
            return model(**values)
        except ValidationError as err:
            raise RequestValidationError([
                {**e, "loc": ("query", *e["loc"])} for e in err.errors(include_url=False, include_context=False)
            ]) from None

    # FastAPI reads the query parameters off the signature; functions have no declared `__signature__`.
    dependency.__signature__ = inspect.signature(model)  # type: ignore[attr-defined]
    return dependency


CallQueryParams = Depends(query_params(CallQuery))


def _options(request: Request, settings: Settings, agent_channel: int, rules_name: str) -> AuditOptions:
    return AuditOptions(
        agent_channel=agent_channel,
        max_seconds=getattr(settings, "max_call_s", 4 * 3600),
        max_bytes=settings.audit_max_file_bytes,
        beam_size=settings.audit_beam_size,
        rules_name=rules_name,
        tenant=tenant_of(request),
    )


def _upload_dir(settings: Settings) -> Path:
    return Path(settings.data_dir).resolve() / "audit" / "uploads"


def _import_roots(request: Request, settings: Settings) -> list[Path]:
    """Folders a path batch may read from: CALLWATCH_AUDIT_IMPORT_ROOTS, or the data dir's `import` folder;
    for a tenant-scoped key, the folder named after its tenant in each (the share holds every tenant's
    recordings, and a report would show another tenant's call)."""
    # realpath, not resolve(): a loop of links (say, as the tenant's folder) is then no folder, not an error.
    roots = [Path(os.path.realpath(r)) for r in settings.audit_import_roots or [Path(settings.data_dir) / "import"]]
    tenant = tenant_of(request)
    if tenant is None:
        return roots
    # A tenant name that is no plain folder name (`..`, `a/b`) gets no folder at all.
    return [sub for sub in (Path(os.path.realpath(r / tenant)) for r in roots) if sub.parent in roots and sub.name == tenant]


def _rules(text: str | None, name: str, runtime: Runtime) -> RuleBook:
    try:
        return book_from_text(text, name, runtime)
    except RulesConfigError as err:
        raise unprocessable(("body", "rules"), str(err)) from None


@router.post("/batches", status_code=202, response_model=BatchOut)
async def upload_batch(
    request: Request,
    runtime: RuntimeDep,
    queue: AuditQueueDep,
    files: list[UploadFile] = File(..., description="recordings"),
    meta: Optional[str] = Form(None, description="JSON: RecordingMeta for every file, or {\"files\": {name: RecordingMeta}}"),
    metadata_csv: Optional[UploadFile] = File(None, description="metadata CSV (see docs/audit.md)"),
    rules: Optional[UploadFile] = File(None, description="rules YAML merged over the defaults"),
    agent_channel: int = Form(0, ge=0, le=1),
) -> BatchOut:
    """Upload recordings (multipart) and queue one job per file. Answers at once with the batch; poll
    GET /v1/audit/batches/{id} for progress."""
    rules_name = (rules.filename or "rules.yaml") if rules is not None else "default"
    rules_text = await _rules_upload(rules, rules_name)
    book = _rules(rules_text, rules_name, runtime)
    common, per_file = _parse_meta(meta)
    beside: dict[str, RecordingMeta] = {}
    folder = _upload_dir(runtime.settings) / new_id()
    folder.mkdir(parents=True, exist_ok=True)
    if metadata_csv is not None:
        csv_path = folder / "metadata.csv"
        csv_path.write_bytes(await metadata_csv.read())
        try:
            beside = read_metadata_csv(csv_path)
        except MetadataError as err:
            raise unprocessable(("body", "metadata_csv"), str(err)) from None
    options = _options(request, runtime.settings, agent_channel, rules_name)
    items: list[NewFile] = []
    for n, upload in enumerate(files):
        name = _SAFE_NAME.sub("_", Path(upload.filename or f"recording-{n}").name) or f"recording-{n}"
        target = folder / f"{n:04d}" / name  # one folder each: two uploads of one name do not collide
        target.parent.mkdir()
        await _save(upload, target, options.max_bytes)
        file_meta = per_file.get(name) or common
        items.append(NewFile(target, name, resolve_meta(name, beside, file_meta)))
    batch_id = await queue.submit(items, options, book, source="upload", rules_text=rules_text)
    return _submitted(queue, batch_id)


async def _rules_upload(rules: UploadFile | None, name: str) -> str | None:
    if rules is None:
        return None
    try:
        return decode_text(await rules.read(), f"rules file {name}")
    except UndecodableText as err:
        raise unprocessable(("body", "rules"), str(err)) from None


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
    if too_deep(raw):  # json.loads would recurse once per level, into a RecursionError
        raise unprocessable(("body", "meta"), too_deep_message())
    try:
        data = json.loads(raw)
        if isinstance(data, dict) and isinstance(data.get("files"), dict):
            return None, {k: RecordingMeta.model_validate(v) for k, v in data["files"].items()}
        return RecordingMeta.model_validate(data), {}
    except (ValueError, ValidationError) as err:
        raise unprocessable(("body", "meta"), str(err)) from None


@router.post("/batches/paths", status_code=202, response_model=BatchOut)
async def path_batch(request: Request, body: PathBatchRequest, runtime: RuntimeDep, queue: AuditQueueDep) -> BatchOut:
    """Bulk: audit files already on the server (files or folders under an allowed import root). What a
    folder holds is audited only where it really is inside them: a link out is listed as a skipped job."""
    roots = _import_roots(request, runtime.settings)
    unusable = [{"loc": ["body", "paths", i], "msg": f"{raw[:200]!r}: {problem}", "type": "value_error"}
                for i, raw in enumerate(body.paths) if (problem := path_problem(raw)) is not None]
    if unusable:
        raise HTTPException(status_code=422, detail=unusable)
    paths: list[Path] = []
    for n, raw in enumerate(body.paths):
        # Where it really is decides (every link followed); outside is 403 whether or not it exists.
        if not inside(Path(os.path.realpath(raw)), roots):
            allowed = ", ".join(map(str, roots)) or "none for this key"
            raise HTTPException(status_code=403, detail=f"{raw}: outside the import folders ({allowed})")
        try:
            paths.append(real_path(Path(raw)))
        except LinkLoop:
            raise unprocessable(("body", "paths", n), f"{raw}: a loop of symbolic links") from None
        except OSError:
            raise HTTPException(status_code=404, detail=f"{raw}: not found") from None
    rules_name = "rules.yaml" if body.rules else "default"
    book = _rules(body.rules, rules_name, runtime)
    try:
        items = await asyncio.to_thread(recordings, paths, body.meta, roots)
    except MetadataError as err:  # a metadata CSV beside the recordings
        raise unprocessable(("body", "paths"), str(err)) from None
    batch_id = await queue.submit(items, _options(request, runtime.settings, body.agent_channel, rules_name), book, source="path",
                                  rules_text=body.rules)
    return _submitted(queue, batch_id)


def _submitted(queue: AuditQueue, batch_id: str) -> BatchOut:
    batch = queue.batch(batch_id)
    assert batch is not None, "a batch is read back in the request that submitted it"
    return batch


def _visible_batch(request: Request, keys: Keys, store: CallStore, queue: AuditQueue, batch_id: str) -> BatchOut:
    """The batch as this key may see it (in a worker thread): 404 for one queued under another tenant, as
    for no batch at all."""
    tenant = tenant_of(request)
    batch = queue.batch(batch_id) if may_open_batch(store, tenant, batch_id) else None
    if batch is None:
        raise HTTPException(status_code=404, detail="no such batch")
    return batch.model_copy(update={"jobs": scoped_jobs(store, tenant, team_agents_of(request, keys), batch.jobs)})


@router.get("/batches/{batch_id}", response_model=BatchOut)
async def get_batch(request: Request, batch_id: str, runtime: RuntimeDep, keys: KeysDep,
                    queue: AuditQueueDep) -> BatchOut:
    return await asyncio.to_thread(_visible_batch, request, keys, runtime.store, queue, batch_id)


@router.get("/batches/{batch_id}/summary.csv", response_class=CSVResponse)
async def batch_summary_csv(request: Request, batch_id: str, runtime: RuntimeDep, keys: KeysDep,
                            queue: AuditQueueDep) -> CSVResponse:
    """The batch as a spreadsheet: one row per file (failed ones with their reason), one column per rule."""
    store = runtime.store
    batch = await asyncio.to_thread(_visible_batch, request, keys, store, queue, batch_id)

    def rows() -> list[dict[str, Any]]:
        out = []
        for j in batch.jobs:
            report = call_report(store, j.call_id) if j.call_id and j.state in ("done", "skipped") else None
            out.append(batch_row(j.file_name, j.state, report, j.error))
        return out

    body = batch_csv(masked(await asyncio.to_thread(rows), runtime.settings.mask_pii))
    return CSVResponse(body, headers={"Content-Disposition": f'attachment; filename="batch-{batch_id[:8]}.csv"'})


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(request: Request, job_id: str, runtime: RuntimeDep, keys: KeysDep, queue: AuditQueueDep) -> JobOut:
    store = runtime.store
    tenant = tenant_of(request)

    def visible() -> JobOut | None:
        job = queue.job(job_id)
        if job is None or not may_open_batch(store, tenant, job.batch_id):
            return None
        return scoped_jobs(store, tenant, team_agents_of(request, keys), [job])[0]

    job = await asyncio.to_thread(visible)
    if job is None:
        raise HTTPException(status_code=404, detail="no such job")
    return job


@router.get("/calls", response_model=CallPage)
async def calls_list(request: Request, runtime: RuntimeDep, keys: KeysDep, list_sync: CallListSyncDep,
                     q: CallQuery = CallQueryParams) -> CallPage:
    """The call list: full-text search (`q`, Chinese), filters, sorting, pagination; a tenant-scoped key's,
    of its tenant's calls; a team supervisor's, of its teams' agents' calls."""
    if list_sync.due():
        await asyncio.to_thread(list_sync.sync)
    page = await asyncio.to_thread(CallList(runtime.store.db).page, q, tenant_of(request), team_agents_of(request, keys))
    sent = await asyncio.to_thread(_as_sent, runtime.store, tenant_of(request), [r.call_id for r in page.rows])
    page = page.model_copy(update={"rows": [r.model_copy(update={"call_id": sent[r.call_id]}) for r in page.rows]})
    return CallPage.model_validate(masked(page.model_dump(), runtime.settings.mask_pii))  # snippets quote calls


def _as_sent(store: CallStore, tenant: str | None, keys: list[str]) -> dict[str, str]:
    """{row key: the id to show}: for a tenant-scoped key (of `tenant`) the ids its phone systems sent, for a
    deployment-wide one the keys (unique across tenants)."""
    if tenant is None:
        return {k: k for k in keys}
    return store.sent_ids(keys)


@router.get("/calls.csv", response_class=CSVResponse)
async def calls_csv(request: Request, runtime: RuntimeDep, keys: KeysDep, q: CallQuery = CallQueryParams) -> CSVResponse:
    """The filtered call list as a spreadsheet (up to 10,000 calls), one column per rule; a tenant-scoped
    key's, of its tenant's calls; a team supervisor's, of its teams' agents' calls."""
    store = runtime.store
    tenant = tenant_of(request)

    def rows() -> list[dict[str, Any]]:
        agents = team_agents_of(request, keys)
        out, offset = [], 0
        while offset < 10_000:
            page = CallList(store.db).page(q.model_copy(update={"offset": offset, "limit": 500}), tenant, agents)
            sent = _as_sent(store, tenant, [r.call_id for r in page.rows])
            for r in page.rows:
                report = {**call_report(store, r.call_id), "call_id": sent[r.call_id]}
                out.append(batch_row(r.file_name or sent[r.call_id], "done", report))
            offset += 500
            if offset >= page.total:
                break
        return out

    body = batch_csv(masked(await asyncio.to_thread(rows), runtime.settings.mask_pii))
    return CSVResponse(body, headers={"Content-Disposition": 'attachment; filename="calls.csv"'})


def _report(request: Request, runtime: Runtime) -> dict[str, Any]:
    """The report of the call the path names, with the id it was named by."""
    try:
        report = {**call_report(runtime.store, request.state.call_key), "call_id": request.path_params["call_id"]}
        shown: dict[str, Any] = masked(report, runtime.settings.mask_pii)
        return shown
    except ReportNotFound:
        raise HTTPException(status_code=404, detail="no such call") from None


@router.get("/calls/{call_id}")
async def call_json(request: Request, call_id: str, runtime: RuntimeDep) -> JSONResponse:
    """One call's report (schema: docs/report.md)."""
    return JSONResponse(await asyncio.to_thread(_report, request, runtime))


@router.get("/calls/{call_id}/report.html", response_class=HTMLResponse)
async def call_html(request: Request, call_id: str, runtime: RuntimeDep) -> HTMLResponse:
    report = await asyncio.to_thread(_report, request, runtime)
    audio = f"/v1/audit/calls/{call_id}/audio" if await asyncio.to_thread(_audio_path, request, runtime.store) else None
    names = names_of(runtime)
    body = await asyncio.to_thread(report_html, report, audio, names, back_link="/audit/calls", script_src="/audit/static/report.js")
    return HTMLResponse(body, headers=REPORT_HEADERS)


@router.get("/calls/{call_id}/report.csv", response_class=CSVResponse)
async def call_report_csv(request: Request, call_id: str, runtime: RuntimeDep) -> CSVResponse:
    report = await asyncio.to_thread(_report, request, runtime)
    body = call_csv(report, names_of(runtime))
    return CSVResponse(body, headers={"Content-Disposition": f'attachment; filename="{call_id}.csv"'})


def _audio_path(request: Request, store: CallStore) -> Path | None:
    """The recording of the call the path names, if it is still there."""
    listed = CallList(store.db).listed(request.state.call_key)
    raw = listed.source_path if listed is not None else None
    if not raw or not Path(raw).is_file():
        return None
    return Path(raw)


@router.get("/calls/{call_id}/audio", response_class=FileResponse, responses=AUDIO_RESPONSES)
async def call_audio(request: Request, call_id: str, runtime: RuntimeDep) -> FileResponse:
    """The recording, for the report's player (range requests, so it can jump to a finding)."""
    path = await asyncio.to_thread(_audio_path, request, runtime.store)
    if path is None:
        raise HTTPException(status_code=404, detail="the recording is not available")
    return FileResponse(path, media_type=_AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"))


@router.post("/reaudit", response_model=ReauditOut)
async def reaudit(request: Request, body: ReauditRequest, runtime: RuntimeDep, keys: KeysDep) -> ReauditOut:
    """Re-run the rules (not the recogniser) over stored calls with other rules; compare, or apply. A
    tenant-scoped key re-audits its tenant's calls only, a team supervisor its teams' agents' (another's named
    by id: 404, as for none)."""
    store = runtime.store
    principal = principal_of(request)
    agents = await asyncio.to_thread(team_agents_of, request, keys)
    call_ids = body.call_ids
    shown: dict[str, str] | None = None  # row key → the id to show; None: the keys (an uncut key)
    if principal.tenant is not None or agents is not None:
        if call_ids is None:
            call_ids = await asyncio.to_thread(CallList(store.db).call_ids, body.query or CallQuery(), principal.tenant,
                                               agents)
            shown = await asyncio.to_thread(_as_sent, store, principal.tenant, call_ids)
        else:
            try:  # call ids are per tenant: the ids name the tenant's calls, never another's of the same id
                shown = await asyncio.to_thread(call_keys, keys, store, principal, call_ids)
            except HiddenCall as err:
                raise HTTPException(status_code=404, detail=f"no such call: {err.args[0]!r}") from None
            call_ids = list(shown)
    try:
        result = await asyncio.to_thread(reaudit_calls, store, body.rules, "rules.yaml", call_ids=call_ids,
                                         query=body.query, apply=body.apply)
    except RulesConfigError as err:
        raise unprocessable(("body", "rules"), str(err)) from None
    except KeyError as err:
        raise HTTPException(status_code=404, detail=f"no such call: {err}") from None
    if shown is None:
        return result
    return result.model_copy(update={"rows": [r.model_copy(update={"call_id": shown[r.call_id]}) for r in result.rows]})
