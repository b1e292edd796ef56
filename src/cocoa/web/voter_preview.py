"""The voter start page's preview (issue 17): what the import would do,
shown before the user confirms it.

``POST /start/voters/preview`` takes the start form as it is (file, format,
mapping) and answers JSON - the same preview as ``POST
/api/v1/voters/import/preview``, creating no job and storing nothing. The
page's script shows it and starts the import only when the user confirms.
Without JavaScript the page's *Preview* button posts the same form here and
gets the preview as a page (``voter_preview.html``) whose confirm form
starts the import: a browser cannot resend a chosen file, so that form asks
for the file again and carries format, mapping and mode over.
Same checks, in the same order, as the start POST: session, role (from the
database), CSRF, then the size-limited body.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from cocoa.api.errors import ApiError
from cocoa.api.voter_mapping_routes import unpacked_upload
from cocoa.auth import get_user
from cocoa.config import Settings
from cocoa.domain.errors import InputError
from cocoa.domain.voter_files.preview import preview_file
from cocoa.jobtypes.import_voters.saved_mappings import resolve_mapping
from cocoa.jobtypes.input_errors import STATUS
from cocoa.web import forms, routes, security, start

router = APIRouter(include_in_schema=False)
MAX_MAPPING_TEXT = 10_000


def mount(app: FastAPI) -> None:
    app.include_router(router)


def _error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details}},
                        status_code=status, headers={"Cache-Control": "no-store"})


@router.post("/start/voters/preview")
async def voters_preview(request: Request) -> Response:
    """The preview of the chosen voter file, or the error the import would give:
    JSON for the page's script, a page for a plain form post."""
    if routes.wants_json(request):
        return await _answer(request)
    user = security.current_user(request)
    if user is None:
        return routes.to_login(request)
    answer = await _answer(request)
    return _as_page(request, answer)


def _as_page(request: Request, answer: Response) -> Response:
    """The JSON answer as the no-script preview page (same status)."""
    body = json.loads(bytes(answer.body)) if isinstance(answer, JSONResponse) else {}
    shown, error = (body, None) if answer.status_code == 200 else (None, body.get("error"))
    return routes.render(request, "voter_preview.html", {
        "shown": shown, "error": error, "modes": start.voter_modes(),
        "chosen": getattr(request.state, "preview_choices", {})}, answer.status_code)


async def _answer(request: Request) -> Response:
    user = security.current_user(request)
    if user is None:
        return _error(401, "unauthorized", "Your session ended; log in again.")
    engine: sa.Engine = request.app.state.manager.engine
    current = await run_in_threadpool(get_user, engine, user.username)
    if current is None or not current.is_admin:
        return _error(403, "forbidden", f"User {user.username} is not an admin; only admins can "
                      "import voters.")
    settings: Settings = request.app.state.settings
    try:
        form = await forms.read_checked_form(
            request, forms.start_limits(True, settings.max_upload_bytes))
    except ApiError as exc:
        return _error(exc.status, exc.code, exc.message, exc.details)
    try:
        if not security.csrf_ok(request, form):
            return _error(403, "csrf_failed", "The form expired; reload the page and try again.")
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _error(400, "file_required", "Choose a file to upload.")
        requested = _text(form.get("format"), 64) or "auto"
        mapping = _text(form.get("mapping"), MAX_MAPPING_TEXT) or None
        # carried into the no-script page's confirm form
        request.state.preview_choices = {"format": requested, "mapping": mapping or "",
                                         "mode": _text(form.get("mode"), 64),
                                         "filename": upload.filename[:200]}
        shown = await run_in_threadpool(_preview, engine, settings, upload.file, requested,
                                        mapping)
        return JSONResponse(shown, headers={"Cache-Control": "no-store"})
    except InputError as exc:
        return _error(STATUS[exc.problem], exc.code, exc.message, exc.details)
    finally:
        await form.close()


def _text(value: object, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _preview(engine: sa.Engine, settings: Settings, stream: Any, requested: str,
             mapping_text: str | None) -> dict[str, Any]:
    with engine.connect() as conn:
        mapping, _ = resolve_mapping(conn, mapping_text)
    return preview_file(unpacked_upload(stream, None, settings), requested, mapping)
