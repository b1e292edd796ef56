"""The Workers page, the Jobs page's "no worker" banner and the job
timeline's data (issue 19): thin views over :mod:`cocoa.jobs.workers` and
:mod:`cocoa.jobs.history`. Templates: ``workers.html``,
``_workers_banner.html``, ``_history.html``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from starlette.requests import Request

from cocoa.jobs import workers as worker_registry
from cocoa.jobs.manager import JobManager
from cocoa.jobs.types import all_job_types
from cocoa.web import routes, security

router = APIRouter(include_in_schema=False)


def mount(app: FastAPI) -> None:
    app.include_router(router)


def unserved(manager: JobManager) -> dict[str, int]:
    """Pending jobs by type that no live worker serves: the banner's content
    (empty: no banner). Internal types count too when someone queued them."""
    return worker_registry.unserved_pending(manager.engine, manager.settings.lease_seconds,
                                            all_job_types(include_hidden=True))


def history(manager: JobManager, job_id: str) -> list[dict[str, Any]]:
    return [event.as_dict() for event in manager.history(job_id)]


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request) -> Response:
    if security.current_user(request) is None:
        return routes.to_login(request)
    manager: JobManager = request.app.state.manager
    found = worker_registry.list_workers(manager.engine, manager.settings.lease_seconds)
    return routes.render(request, "workers.html", {
        "workers": [w.as_dict() for w in found], "live": sum(w.live for w in found),
        "lease_seconds": manager.settings.lease_seconds, "unserved": unserved(manager),
    })
