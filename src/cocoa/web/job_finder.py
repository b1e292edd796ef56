"""The Jobs page's filters and its bulk actions (issue 19).

Filters are a GET form, so they live in the URL (bookmark, share, back
button); the live refresh asks the API with the very same query
(``data-query``). A bad value on the page is dropped with a notice rather
than an error page: the rest of the filter still applies.

Bulk actions are plain form POSTs to ``/web/bulk/cancel`` and
``/web/bulk/retry`` (not ``/jobs/bulk/...``, which the single-job
``/jobs/{id}/{action}`` route would swallow). The first POST answers a
confirmation page that says how many jobs the action would touch (the
engine's dry run); its button posts again with ``confirm=1``. No script is
needed, and the count shown is the one the server will act on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request

from cocoa.api.errors import ApiError
from cocoa.api.job_filters import build_filter, parse_when
from cocoa.auth import User
from cocoa.jobs.bulk import MAX_BULK, BulkOutcome, bulk_cancel, bulk_retry
from cocoa.jobs.manager import JobManager
from cocoa.jobs.search import MAX_QUERY, AmbiguousJobId, JobFilter, parse_statuses
from cocoa.jobs.store import JobNotFound
from cocoa.jobs.webhooks import delivery_summary

router = APIRouter(include_in_schema=False)

TEXT_FIELDS = ("created_by", "created_after", "created_before", "q")


def mount(app: FastAPI) -> None:
    app.include_router(router)


@dataclass
class PageFilter:
    """The filter of one Jobs page: as the engine takes it, as the form shows it."""

    spec: JobFilter
    statuses: list[str]
    values: dict[str, str]  # the text fields, as typed
    notices: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.statuses or self.spec.type_name or any(self.values.values()))

    def query(self, **extra: str) -> str:
        """The filter as a query string (the API's and the page's)."""
        pairs: list[tuple[str, str]] = [("status", s) for s in self.statuses]
        if self.spec.type_name:
            pairs.append(("type", self.spec.type_name))
        pairs.extend((name, value) for name, value in self.values.items() if value)
        pairs.extend(extra.items())
        return urlencode(pairs)


def page_filter(params: Any, type_name: str) -> PageFilter:
    """Read the filter from query (or form) parameters; drop bad parts with a notice."""
    notices: list[str] = []
    try:
        statuses = list(parse_statuses([str(v)[:200] for v in params.getlist("status")]))
    except ValueError as exc:
        statuses = []
        notices.append(f"{exc} The status filter was ignored.")
    values = {name: str(params.get(name) or "").replace("\x00", "").strip()[:MAX_QUERY] for name in TEXT_FIELDS}
    for name in ("created_after", "created_before"):
        try:
            parse_when(values[name], name)
        except ApiError as exc:
            notices.append(f"{exc.message} It was ignored.")
            values[name] = ""
    try:
        spec = build_filter(statuses, type_name or None, values["created_by"], values["created_after"],
                            values["created_before"], values["q"])
    except ApiError as exc:  # e.g. a window that ends before it starts
        notices.append(f"{exc.message} The dates were ignored.")
        values["created_after"] = values["created_before"] = ""
        spec = build_filter(statuses, type_name or None, values["created_by"], None, None,
                            values["q"])
    return PageFilter(spec, statuses, values, notices)


# --------------------------------------------------------------------------- bulk actions


async def _checked_form(request: Request) -> FormData | Response:
    """The POST's form once the session, the admin role and CSRF are checked."""
    from cocoa.web import routes

    checked = await routes.admin_form(request)
    return checked if isinstance(checked, Response) else checked[1]


async def _confirmed_or_dry_run(request: Request, form: FormData, back: str,
                                action: Callable[[JobManager, User, bool], BulkOutcome],
                                done: str) -> BulkOutcome | Response:
    """The step both bulk actions share. Without ``confirm=1`` the engine's dry
    run, whose outcome the caller turns into the question; with it the action
    itself, then back to the list with a notice (``done`` formatted with the
    count) naming what was skipped."""
    from cocoa.web import routes, security

    user = security.current_user(request)
    assert user is not None
    confirmed = form.get("confirm") == "1"
    outcome = await run_in_threadpool(action, routes._manager(request), user, not confirmed)
    if not confirmed:
        return outcome
    security.flash(request, done.format(len(outcome.done)) + _skipped_text(outcome.skipped))
    return RedirectResponse(back, status_code=303)


@router.post("/web/bulk/cancel", response_class=HTMLResponse)
async def bulk_cancel_page(request: Request) -> Response:
    from cocoa.web import routes, security

    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    refs = [str(v)[:64] for v in form.getlist("job_id") if str(v).strip()][:MAX_BULK]
    back = _back(form)
    if not refs:
        security.flash(request, "Select the jobs to cancel first.", "error")
        return RedirectResponse(back, status_code=303)

    def cancel(manager: JobManager, user: User, dry_run: bool) -> BulkOutcome:
        return bulk_cancel(manager, refs, actor=user.actor, dry_run=dry_run)

    outcome = await _confirmed_or_dry_run(request, form, back, cancel, "Cancelled {} job(s).")
    if isinstance(outcome, Response):
        return outcome
    return routes.render(request, "bulk_confirm.html", {
        "action": "cancel", "count": len(outcome.matched), "job_ids": outcome.matched,
        "skipped": outcome.skipped, "back": back, "fields": [("job_id", i) for i in outcome.matched],
        "question": f"Cancel {len(outcome.matched)} selected job(s)?",
    })


@router.post("/web/bulk/retry", response_class=HTMLResponse)
async def bulk_retry_page(request: Request) -> Response:
    from cocoa.web import routes

    form = await _checked_form(request)
    if isinstance(form, Response):
        return form
    type_name = str(form.get("type") or "")[:64]
    found = page_filter(form, type_name if type_name in _known_types() else "")
    statuses = [s for s in found.statuses if s in ("failed", "cancelled")] or ["failed"]
    spec = found.spec.with_statuses(*statuses)
    back = "/jobs?" + found.query()

    def retry(manager: JobManager, user: User, dry_run: bool) -> BulkOutcome:
        return bulk_retry(manager, spec, created_by=user.username, dry_run=dry_run)

    outcome = await _confirmed_or_dry_run(request, form, back, retry, "Retried {} job(s) as new jobs.")
    if isinstance(outcome, Response):
        return outcome
    noun = " or ".join(statuses)
    fields = [("status", s) for s in statuses] + ([("type", spec.type_name)] if spec.type_name else [])
    fields += [(name, value) for name, value in found.values.items() if value]
    return routes.render(request, "bulk_confirm.html", {
        "action": "retry", "count": len(outcome.matched), "job_ids": outcome.matched, "skipped": [],
        "back": back, "fields": fields,
        "question": f"Retry {len(outcome.matched)} {noun} job(s) matching this filter?",
    })


def webhook_status(manager: JobManager, job_id: str) -> dict[str, Any] | None:
    """The job's latest webhook delivery, for the job page (None: no webhook)."""
    with manager.driver.autocommit(manager.engine) as conn:
        return delivery_summary(conn, job_id)


def prefix_redirect(request: Request, manager: JobManager, ref: str) -> Response:
    """``/jobs/<unique id prefix>`` to the job's page; else a 404 saying why (or which jobs)."""
    from cocoa.web import routes

    try:
        return RedirectResponse(f"/jobs/{manager.resolve(ref[:64])}", status_code=303)
    except AmbiguousJobId as exc:
        return routes.error_page(request, 404, "Which job?", str(exc))
    except JobNotFound as exc:
        return routes.error_page(request, 404, "Job not found", str(exc))


def _known_types() -> list[str]:
    from cocoa.jobs.types import all_job_types

    return all_job_types(include_hidden=True)


def _back(form: FormData) -> str:
    """Where to return: the Jobs page the form came from (a local /jobs URL only)."""
    back = str(form.get("back") or "/jobs")
    return back if back.startswith("/jobs") and not back.startswith("//") and "\\" not in back else "/jobs"


def _skipped_text(skipped: list[dict[str, str]]) -> str:
    return f" {len(skipped)} left alone (finished already, unknown or not retryable)." if skipped else ""
