"""The web Jobs pages: login, job list, job detail, control buttons, start forms.

Server-rendered with Jinja2 (autoescape on) plus one plain script,
``static/app.js``, that keeps the pages live through the read-only API
(session cookie, GET only) and sends uploads with XMLHttpRequest. Anything
that changes state is a POST to a route here, which checks the session's
CSRF token, so the API itself never has to trust a cookie for a write. A
POST's body is read last - after the session, the role and a CSRF header
are checked - and only through the capped reader of :mod:`cocoa.web.forms`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from cocoa.api.errors import ApiError
from cocoa.api.job_objects import JobObjects, public_dict
from cocoa.api.unpacking import create_plain, create_unpacked, finish_upload, storing, upload_sink
from cocoa.auth import User, get_user
from cocoa.jobs.manager import JobManager, JobNotFound, UploadSource
from cocoa.jobs.model import IllegalTransition, Job
from cocoa.jobs.types import JobValidationError, all_job_types
from cocoa.jobs.uploads import UploadSink, UploadTooLarge
from cocoa.login_guard import LoginRefused
from cocoa.web import forms, job_finder, security, start, view, workers_pages

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
JOBS_PER_PAGE = 25
ERRORS_PER_PAGE = 25
# Beyond any real listing, and small enough that (page - 1) * per_page stays
# a 32-bit SQL integer.
MAX_PAGE_NUMBER = 10_000_000
FORM_EXPIRED = ("Form expired", "This form was missing its security token or it has expired. "
                "Go back, reload the page and try again.")
FORM_REFUSED_TITLES = {400: "Form not readable", 413: "Form too large", 415: "Not a form"}

# No inline script or style anywhere, so the policy can forbid both: even an
# escaping bug could not run injected script.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


def _templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(time=view.fmt_time, duration=view.fmt_duration, rate=view.fmt_rate,
                       number=view.fmt_number, value=view.fmt_value, type_label=view.type_label,
                       range_noun=view.range_noun, input=view.fmt_input, short_error=view.short_error)
    env.globals.update(count=view.fmt_count, statuses=view.STATUSES, action_labels=view.ACTION_LABELS,
                       static=_static_url)
    return Jinja2Templates(env=env)


def _static_url(name: str) -> str:
    """A content hash in the URL, so a deploy never serves a stale script."""
    try:
        digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    except OSError:
        digest = "0"
    return f"/static/{name}?v={digest}"


templates = _templates()


def mount(app: FastAPI) -> None:
    """Called by ``create_app``: the static files and the page routes."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)


# --------------------------------------------------------------------------- helpers


def _manager(request: Request) -> JobManager:
    manager: JobManager = request.app.state.manager
    return manager


def _job_objects(request: Request) -> JobObjects:
    objects: JobObjects = request.app.state.job_objects
    return objects


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    base = {"user": security.current_user(request), "csrf_token": security.csrf_token(request),
            "flashes": security.pop_flash(request)}
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "message": message}, status)


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def wants_json(request: Request) -> bool:
    """The upload script asks for JSON; a plain form post (no JS) gets pages."""
    return (request.headers.get("x-requested-with") == "XMLHttpRequest"
            or "application/json" in request.headers.get("accept", ""))


def json_error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _page_arg(request: Request, name: str) -> int:
    """A page number from the query string, within ``1..MAX_PAGE_NUMBER``.

    Anything but ASCII digits is page 1; a number past the end (``10**20``
    once made the database answer "int too large", a 500) is clamped here and
    then to the last page by the caller, which knows the total.
    """
    value = request.query_params.get(name, "")
    if not (value.isascii() and value.isdigit()):
        return 1
    digits = value.lstrip("0")
    return max(1, min(int(digits[:12] or "0"), MAX_PAGE_NUMBER))


async def _small_form(request: Request) -> FormData | Response:
    """The small form of a POST whose session (and role) were checked, or
    the answer that refuses it: too large (413), not a form (415), malformed (400)."""
    try:
        return await forms.read_checked_form(request)
    except ApiError as exc:
        if wants_json(request):
            return json_error(exc.status, exc.code, exc.message, exc.details)
        return error_page(request, exc.status, FORM_REFUSED_TITLES.get(exc.status, "Form refused"), exc.message)


# --------------------------------------------------------------------------- login


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    if security.current_user(request):
        return RedirectResponse(security.safe_next(request.query_params.get("next")), status_code=303)
    return render(request, "login.html", {"next": security.safe_next(request.query_params.get("next"))})


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request) -> Response:
    form = await _small_form(request)
    if isinstance(form, Response):
        return form
    next_url = security.safe_next(str(form.get("next") or ""))
    if not security.csrf_ok(request, form):
        return render(request, "login.html", {"next": next_url, "error": (
            "The login form expired or was sent from another site. Please try again.")}, 403)
    username = str(form.get("username") or "").strip()[:128]
    password = str(form.get("password") or "")
    outcome = await run_in_threadpool(security.log_in, request, username, password)
    if isinstance(outcome, LoginRefused):  # wrong (401), throttled (429) or busy (503)
        page = render(request, "login.html", {"next": next_url, "username": username,
                                              "error": outcome.message}, outcome.status)
        page.headers.update(outcome.headers)
        return page
    return RedirectResponse(next_url, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    if security.current_user(request):  # without a session there is nothing to end, nor a body to read
        form = await _small_form(request)
        if isinstance(form, Response):
            return form
        if not security.csrf_ok(request, form):
            return error_page(request, 403, "Form expired", "The logout form was not valid; please try again.")
    await run_in_threadpool(security.logout, request)  # ends the session on the server too
    security.flash(request, "You are logged out.")
    return RedirectResponse("/login", status_code=303)


# --------------------------------------------------------------------------- jobs list


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return RedirectResponse("/jobs", status_code=303) if security.current_user(request) else to_login(request)


@router.get("/web/counts.json")
def counts_json(request: Request) -> Response:
    """Counts by status for the live jobs page (the API has no such endpoint)."""
    if security.current_user(request) is None:
        return json_error(401, "unauthorized", "Log in again.")
    return JSONResponse({"counts": _manager(request).counts_by_status()},
                        headers={"Cache-Control": "no-store"})


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request) -> Response:
    if security.current_user(request) is None:
        return to_login(request)
    type_name, types, notice = _type_filter(request.query_params.get("type", "")[:64])
    finder = job_finder.page_filter(request.query_params, type_name)  # statuses, creator, dates, search
    status = ",".join(finder.statuses)
    page = _page_arg(request, "page")
    manager = _manager(request)

    def listing(page: int) -> tuple[list[Job], int]:
        return manager.list_jobs(spec=finder.spec, limit=JOBS_PER_PAGE, offset=(page - 1) * JOBS_PER_PAGE)

    jobs, total = listing(page)
    if page > view.page_count(total, JOBS_PER_PAGE):  # past the end: show the last page
        page = view.page_count(total, JOBS_PER_PAGE)
        jobs, total = listing(page)
    return render(request, "jobs.html", {
        "jobs": _with_children(manager, jobs), "total": total, "page": page,
        "pages": view.page_count(total, JOBS_PER_PAGE), "per_page": JOBS_PER_PAGE,
        "status": status, "type": type_name, "types": types, "counts": manager.counts_by_status(),
        "notice": notice, "unserved": workers_pages.unserved(manager),
        "finder": finder, "notices": finder.notices,
    })


def _with_children(manager: JobManager, jobs: list[Job]) -> list[dict[str, Any]]:
    """Job objects; a group's with its children (the row opens to them)."""
    kids = manager.children([j.id for j in jobs if j.is_group])
    return [public_dict(j, None, kids.get(j.id)) for j in jobs]


def _type_filter(type_name: str) -> tuple[str, list[str], str | None]:
    """(filter, choices, notice). An unknown type is dropped with a notice
    (the API answers 422 for it, which would stop live updates); a hidden type
    asked for by name (``noop``) stays selectable."""
    types = all_job_types()
    if not type_name or type_name in types:
        return type_name, types, None
    if type_name in all_job_types(include_hidden=True):
        return type_name, [*types, type_name], None
    return "", types, f"There is no job type {type_name!r}; showing jobs of every type."


# --------------------------------------------------------------------------- one job


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> Response:
    user = security.current_user(request)
    if user is None:
        return to_login(request)
    manager = _manager(request)
    try:
        job = manager.get(job_id)
    except JobNotFound:  # a short id (prefix) goes to its job; an ambiguous one says which
        return job_finder.prefix_redirect(request, manager, job_id)
    page = _page_arg(request, "errors_page")
    errors, error_total = manager.errors(job_id, limit=ERRORS_PER_PAGE, offset=(page - 1) * ERRORS_PER_PAGE)
    if page > view.page_count(error_total, ERRORS_PER_PAGE):  # past the end: show the last page
        page = view.page_count(error_total, ERRORS_PER_PAGE)
        errors, error_total = manager.errors(job_id, limit=ERRORS_PER_PAGE,
                                             offset=(page - 1) * ERRORS_PER_PAGE)
    data = _job_objects(request).job_dict(job)
    return render(request, "job.html", {
        "job": data, "actions": view.allowed_actions(data) if user.is_admin else [],
        "errors": errors, "error_total": error_total, "errors_page": page,
        "error_pages": view.page_count(error_total, ERRORS_PER_PAGE), "errors_per_page": ERRORS_PER_PAGE,
        "history": workers_pages.history(manager, job.id),
        "webhook": job_finder.webhook_status(manager, job.id),
    })


@router.post("/jobs/{job_id}/{action}")
async def job_control(request: Request, job_id: str, action: str) -> Response:
    if action not in view.ACTION_LABELS:
        return error_page(request, 404, "Not found", f"There is no action {action!r}.")
    checked = await admin_form(request)
    if isinstance(checked, Response):
        return checked
    user, _form = checked
    try:
        target = await run_in_threadpool(_apply_action, request, user, job_id, action)
    except JobNotFound:
        return error_page(request, 404, "Job not found", f"There is no job with id {job_id}.")
    except (IllegalTransition, JobValidationError) as exc:
        security.flash(request, str(exc), "error")
        target = f"/jobs/{job_id}"
    return RedirectResponse(target, status_code=303)


async def admin_form(request: Request) -> tuple[User, FormData] | Response:
    """The user and form of a state-changing POST once the session, the admin
    role (before the body is read) and the CSRF token are checked; otherwise
    the page or redirect to answer with."""
    user = security.current_user(request)
    if user is None:
        return to_login(request)
    refused = await run_in_threadpool(_refuse_role, request, user)
    if refused is not None:
        return error_page(request, 403, *refused)
    form = await _small_form(request)
    if isinstance(form, Response):
        return form
    if not security.csrf_ok(request, form):
        return error_page(request, 403, *FORM_EXPIRED)
    return user, form


def _refuse_role(request: Request, user: User) -> tuple[str, str] | None:
    """(title, message) when a state-changing POST must be refused with 403
    for the user's role - decided before the body is read.

    The role is read again from the database: a session cookie lives for
    hours, and an admin demoted (or deleted) meanwhile must lose write access
    at once, not when the cookie expires.
    """
    current = get_user(_manager(request).engine, user.username)
    if current is None or not current.is_admin:
        return ("Not allowed", f"User {user.username} is not an admin; only admins can do this.")
    return None


def _apply_action(request: Request, user: User, job_id: str, action: str) -> str:
    """Run the control action; return where to go next (retry: the new job)."""
    manager = _manager(request)
    if action == "retry":
        new = manager.retry(job_id, created_by=user.username, actor=user.actor)
        security.flash(request, f"Retry started as a new job (retry of {job_id}).")
        return f"/jobs/{new.id}"
    job = manager.control(job_id, action, actor=user.actor)
    security.flash(request, _control_message(action, job.status.value))
    return f"/jobs/{job_id}"


def _control_message(action: str, status: str) -> str:
    if status == "processing":
        return {"cancel": "Cancel requested: the job stops after its current batch.",
                "pause": "Pause requested: the job pauses after its current batch.",
                "resume": "Pause request withdrawn: the job keeps running."}[action]
    return {"cancel": "Job cancelled.", "pause": "Job paused.", "resume": "Job resumed: it is queued again."
            }.get(action, "Done.")


# --------------------------------------------------------------------------- start pages


@router.get("/start/{slug}", response_class=HTMLResponse)
def start_page(request: Request, slug: str) -> Response:
    spec = start.SPECS.get(slug)
    if spec is None:
        return error_page(request, 404, "Not found", "There is no such start page.")
    user = security.current_user(request)
    if user is None:
        return to_login(request)
    if not user.is_admin:
        return error_page(request, 403, "Not allowed", "Only admins can start jobs.")
    return render(request, f"start_{slug}.html", _start_context(spec))


def _start_context(spec: start.StartSpec, error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"spec": spec, "formats": start.voter_formats(), "modes": start.voter_modes(),
            "providers": start.PROVIDERS, "provider_choices": start.provider_choices(),
            "filters": start.GEOCODE_FILTERS, "error": error,
            "mapping": start.PARCEL_MAPPING,
            "registered": spec.job_type in all_job_types()}


@router.post("/start/{slug}")
async def start_submit(request: Request, slug: str) -> Response:
    spec = start.SPECS.get(slug)
    if spec is None:
        return json_error(404, "not_found", "There is no such start page.")
    outcome = await _start_outcome(request, spec)
    if isinstance(outcome, Response):
        return outcome
    status, body = outcome
    if wants_json(request):
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    if status < 400:
        return RedirectResponse(body["url"], status_code=303)
    return render(request, f"start_{slug}.html", _start_context(spec, body["error"]), status)


async def _start_outcome(request: Request, spec: start.StartSpec) -> Response | tuple[int, dict[str, Any]]:
    """(status, JSON body) for the start POST, or a response for a missing session.

    Session and role are checked before the body is read; the body is read
    through the same size-limited reader as the API's uploads.
    """
    user = security.current_user(request)
    if user is None:
        return json_error(401, "unauthorized", "Your session ended; log in again.") \
            if wants_json(request) else to_login(request)
    refused = await run_in_threadpool(_refuse_role, request, user)
    if refused is not None:
        return 403, _error_body("forbidden", refused[1])
    limits = forms.start_limits(spec.needs_file, _manager(request).settings.max_upload_bytes)
    sink = upload_sink(_manager(request), user.username, unpack=spec.job_type == "import_voters") \
        if spec.needs_file else None
    try:
        async with storing(sink):  # a refusal leaves no stored file behind
            form = await forms.read_checked_form(request, limits, sink)
            try:
                if not security.csrf_ok(request, form):
                    raise ApiError(403, FORM_EXPIRED[1], "csrf_failed")
                job = await _start_job(request, spec, form, user, sink)
            finally:
                await form.close()
    except ApiError as exc:
        return exc.status, _error_body(exc.code, exc.message, exc.details)
    except start.FormError as exc:
        return 422, _error_body(exc.code, exc.message, {"field": exc.field})
    except JobValidationError as exc:
        return exc.status, _error_body(exc.code, exc.message, exc.details)
    except UploadTooLarge as exc:
        return 413, _error_body("file_too_large", str(exc), {"limit_bytes": exc.limit})
    return 202, {"job_id": job.id, "url": f"/jobs/{job.id}", "status": job.status.value}


async def _start_job(request: Request, spec: start.StartSpec, form: FormData, user: User,
                     sink: UploadSink | None) -> Job:
    """Build the job request from the form and create the job."""
    job_request = start.BUILDERS[spec.slug](form)
    if sink:  # a .zip/.gz voter file is read as the API reads it (cocoa.api.unpacking)
        create = create_unpacked if spec.job_type == "import_voters" else create_plain
        source = await finish_upload(sink, _upload_source(form))
        return await run_in_threadpool(create, _manager(request), spec.job_type, job_request,
                                       source, created_by=user.username)
    return await run_in_threadpool(_manager(request).create, spec.job_type, job_request,
                                   created_by=user.username)


def _upload_source(form: Any) -> UploadSource:
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise JobValidationError("Choose a file to upload.", code="file_required", status=400)
    return UploadSource(upload.file, upload.filename, upload.content_type)


def _error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}
