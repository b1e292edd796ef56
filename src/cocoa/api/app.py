"""The ASGI application: API, web pages and (optionally) an embedded worker.

``create_app`` is the one place where the pieces are put together; each
router module stays a thin layer over :class:`cocoa.jobs.manager.JobManager`.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.sessions import SessionMiddleware

from cocoa.api import (
    auth_routes,
    bulk_routes,
    docs,
    error_export_routes,
    health,
    households_routes,
    imports,
    jobs_routes,
    results_routes,
    voter_mapping_routes,
    workers_routes,
)
from cocoa.api.bodies import SmallBodyLimit
from cocoa.api.errors import install_error_handlers, use_error_shape_in_openapi
from cocoa.api.job_objects import JobObjects
from cocoa.api.sessions import SessionCheck, cookie_name
from cocoa.auth import SESSION_SECONDS, TokenCache
from cocoa.config import Settings, get_settings
from cocoa.db.engine import make_engine
from cocoa.db.migrate import check_current
from cocoa.db.storage import private_dir
from cocoa.jobs.manager import JobManager
from cocoa.jobs.worker import Worker
from cocoa.jobtypes.builtin import register_builtin_types
from cocoa.login_guard import LoginGuard

log = logging.getLogger("cocoa.api")

API_DESCRIPTION = """Background jobs of Cocoa Canvas: voter import, parcel import and geocoding.

Every endpoint except `/healthz`, `/readyz` and `POST /api/v1/auth/tokens` needs
`Authorization: Bearer <token>`. Errors are `{"error": {"code", "message", "details"}}`."""


def create_app(
    settings: Settings | None = None, *, engine: sa.Engine | None = None, run_worker: bool = False,
) -> FastAPI:
    settings = settings or get_settings()
    # Requests wait briefly for a lock, then answer 503 + Retry-After (cocoa.api.errors).
    engine = engine or make_engine(settings.resolved_database_url,
                                   lock_wait_ms=round(settings.request_lock_wait_seconds * 1000))
    # The composition root: the shipped job types. Now rather than in the
    # first request: the parcel type brings pyproj and shapely, a noticeable
    # wait for the first upload.
    register_builtin_types()
    manager = JobManager(engine, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        check_current(engine, settings.resolved_database_url)
        worker_thread: threading.Thread | None = None
        worker: Worker | None = None
        if run_worker:
            worker = Worker(manager)
            worker_thread = worker.start_in_thread()
        try:
            yield
        finally:
            if worker and worker_thread:
                worker.stop()
                worker_thread.join()

    app = FastAPI(title="Cocoa Canvas jobs", version="1.0.0", description=API_DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None,  # /docs: cocoa.api.docs, no CDN
                  generate_unique_id_function=operation_id)
    app.state.manager = manager
    app.state.job_objects = JobObjects(manager)
    app.state.token_cache = TokenCache(settings.token_cache_seconds)
    app.state.session_cache = TokenCache(settings.token_cache_seconds)
    app.state.login_guard = LoginGuard(engine, settings)
    app.state.settings = settings
    # Added first, so it runs inside SessionMiddleware and sees the decoded
    # session: a session the server has ended is emptied before any route.
    app.add_middleware(SessionCheck, engine=engine, cache=app.state.session_cache)
    app.add_middleware(
        SessionMiddleware, secret_key=session_secret(settings), session_cookie=cookie_name(settings),
        same_site="lax", https_only=settings.cookie_secure, max_age=SESSION_SECONDS,
    )
    # Added last, so it runs first: a large JSON body is refused before anyone reads it.
    app.add_middleware(SmallBodyLimit)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(auth_routes.router, prefix="/api/v1")
    app.include_router(bulk_routes.router, prefix="/api/v1")  # before /jobs/{job_id}/...
    app.include_router(jobs_routes.router, prefix="/api/v1")
    app.include_router(imports.router, prefix="/api/v1")
    app.include_router(voter_mapping_routes.router, prefix="/api/v1")  # before /voters/{voter_id}
    app.include_router(results_routes.router, prefix="/api/v1")
    app.include_router(error_export_routes.router, prefix="/api/v1")
    app.include_router(households_routes.router, prefix="/api/v1")
    app.include_router(workers_routes.router, prefix="/api/v1")
    _mount_web(app)
    use_error_shape_in_openapi(app)
    return app


def operation_id(route: APIRoute) -> str:
    """The OpenAPI ``operationId``: the route function's name (``list_jobs``,
    ``import_voters``), short and stable for client generators, instead of
    FastAPI's ``list_jobs_api_v1_jobs_get``. Function names are unique across
    the routers; tests/api/test_generated_client.py checks it."""
    return route.name


def create_app_from_env() -> FastAPI:
    """The factory each process of ``cocoa serve --processes N`` calls."""
    settings = get_settings()
    return create_app(settings, run_worker=settings.embedded_worker)


def _mount_web(app: FastAPI) -> None:
    try:
        from cocoa.web import browse as web_browse
        from cocoa.web import job_finder as web_job_finder
        from cocoa.web import routes as web_routes
        from cocoa.web import voter_mappings as web_voter_mappings
        from cocoa.web import voter_preview as web_voter_preview
        from cocoa.web import workers_pages as web_workers
    except ImportError:  # the web layer is optional for API-only deployments
        return
    web_routes.mount(app)
    web_voter_preview.mount(app)  # the voter start page's preview (issue 17)
    web_voter_mappings.mount(app)  # saved column mappings page (issue 17)
    web_browse.mount(app)  # households, map, job results (issue 20)
    web_workers.mount(app)  # workers page (issue 19)
    web_job_finder.mount(app)  # the Jobs page's bulk actions (issue 19)


def session_secret(settings: Settings) -> str:
    """Configured secret, or one generated once and kept in the data dir.

    Several API hosts behind one load balancer must share COCOA_SESSION_SECRET;
    ``cocoa serve`` creates the file before it starts several processes.
    """
    if settings.session_secret:
        return settings.session_secret
    path = Path(settings.data_dir) / "session_secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        private_dir(path.parent)
    secret = secrets.token_urlsafe(48)
    try:  # created 0600 (never readable by others, not even briefly); exclusive: one process wins
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    return secret
