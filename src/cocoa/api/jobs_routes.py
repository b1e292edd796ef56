"""``/api/v1/jobs``: list, inspect, watch and control jobs.

A thin layer over :class:`cocoa.jobs.manager.JobManager`. Decisions:

* The internal ``noop`` type (tests, benchmarks) is hidden from listings
  unless asked for explicitly with ``type=noop``; ``GET /jobs/{id}`` and the
  control endpoints work on any job whose id the caller knows. Archived jobs
  (retention) are hidden unless ``include_archived=true``.
* An unknown ``status`` or ``type`` filter is a 422, not an empty page: a typo
  must not look like "no jobs".
* The read endpoints return a :class:`JSONBody` of dicts the manager built:
  FastAPI then skips validating them against the response model again (a
  large share of a page's cost), and orjson encodes a page much faster than
  the standard library (docs/benchmarks.md). The models still document the responses, and the
  Schemathesis suite checks every response against them.
* Route handlers are plain ``def`` so FastAPI runs their (sync) database work
  in its threadpool; only the event stream is ``async`` and hands each read to
  the threadpool itself.
* The event stream polls the job row (every ~0.25 s) instead of using
  LISTEN/NOTIFY: it works the same on SQLite and PostgreSQL, a job changes at
  most once per batch, and one indexed primary-key read per watcher per
  0.25 s is cheap.
* A stream can stay open for hours, far longer than one request's
  authentication is worth: it re-checks its token or web session against the
  database every ``COCOA_EVENT_STREAM_AUTH_SECONDS`` and ends with an
  ``event: end`` carrying the error object once that credential is revoked,
  expired or logged out (the token cache is bypassed, so a revocation made
  by another process counts too).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import anyio
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from cocoa import auth, jsontext
from cocoa.api.accepted import JobAccepted, accepted
from cocoa.api.deps import AdminUser, CurrentUser, Manager, Objects, bearer
from cocoa.api.errors import ApiError
from cocoa.api.job_filters import JobFilterQuery
from cocoa.api.job_objects import JobObjects
from cocoa.api.schemas import ErrorList, JobList, JobOut, errors, json_errors
from cocoa.api.sessions import SESSION_ID_KEY
from cocoa.jobs.model import Job
from cocoa.jobs.search import AmbiguousJobId, looks_like_full_id

router = APIRouter(prefix="/jobs", tags=["jobs"])

SSE_POLL_SECONDS = 0.25
SSE_KEEPALIVE_SECONDS = 15.0
SSE_AUTH_SECONDS = 5.0  # the default of COCOA_EVENT_STREAM_AUTH_SECONDS
MAX_PAGE = 200
MAX_ERRORS_PAGE = 1000

MAX_OFFSET = 2**31 - 1  # beyond any real table; keeps the SQL integer in range

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size, 1..{MAX_PAGE}.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]


async def _job_id(job_id: Annotated[str, Path(description="The job's id (a UUID), or a unique prefix of "
                                                     "it of at least 6 characters.")], manager: Manager) -> str:
    """Ids that cannot exist are a 404 without a query (and never reach the
    database, which rejects e.g. NUL characters with a 500-worthy error).
    A full id is taken as it is (no extra query on the most polled reads);
    anything else is resolved as an id prefix: a unique one names its job,
    an ambiguous one is a 409 listing the jobs it could mean. ``async``: a
    full id needs no I/O, and a threadpool hop on every poll costs more than
    the read behind it."""
    if len(job_id) > 64 or "\x00" in job_id:
        raise ApiError(404, f"No job with id {job_id[:64]!r}.", "job_not_found")
    if looks_like_full_id(job_id):
        return job_id
    try:
        return await run_in_threadpool(manager.resolve, job_id)
    except AmbiguousJobId as exc:
        raise ApiError(409, str(exc), "ambiguous_job_id", {"candidates": exc.candidates}) from None


JobId = Annotated[str, Depends(_job_id)]


class JSONBody(Response):
    """JSON of plain dicts, encoded by :func:`cocoa.jsontext.dumps`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return jsontext.dumps(content)


@router.get("", response_model=JobList, responses=errors(401, 422))
def list_jobs(
    _: CurrentUser, objects: Objects, spec: JobFilterQuery, limit: Limit = 50, offset: Offset = 0,
) -> JSONBody:
    """Jobs, newest first. ``total`` counts every match, not just this page.

    Filters combine: several statuses, a type, a creator, a creation window
    and a search (``q``: a job id, an id prefix or part of a file name)."""
    found, total = objects.list_job_dicts(limit=limit, offset=offset, spec=spec)
    return JSONBody({"jobs": found, "total": total, "limit": limit, "offset": offset})


@router.get("/{job_id}", response_model=JobOut, responses=errors(401, 404))
def get_job(_: CurrentUser, job_id: JobId, objects: Objects) -> JSONBody:
    """One job, with its progress and its five most recent item errors."""
    return JSONBody(objects.job_object(job_id))


@router.get("/{job_id}/errors", response_model=ErrorList, responses=errors(401, 404, 422))
def list_job_errors(
    _: CurrentUser, job_id: JobId, manager: Manager,
    limit: Annotated[int, Query(ge=1, le=MAX_ERRORS_PAGE, description=f"1..{MAX_ERRORS_PAGE}")] = 50,
    offset: Offset = 0,
) -> JSONBody:
    """A job's item errors in the order they were recorded."""
    found, total = manager.errors(job_id, limit=limit, offset=offset)
    return JSONBody({"errors": found, "total": total, "limit": limit, "offset": offset})


# ----------------------------------------------------------------------------- control


def _control(objects: JobObjects, job_id: str, action: str, actor: str) -> dict[str, Any]:
    return objects.job_dict(objects.jobs.control(job_id, action, actor=actor))


@router.post("/{job_id}/cancel", response_model=JobOut, responses=errors(401, 403, 404, 409))
def cancel_job(user: AdminUser, job_id: JobId, objects: Objects) -> dict[str, Any]:
    """Pending or paused jobs stop at once; a running job stops after its current batch."""
    return _control(objects, job_id, "cancel", user.actor)


@router.post("/{job_id}/pause", response_model=JobOut, responses=errors(401, 403, 404, 409))
def pause_job(user: AdminUser, job_id: JobId, objects: Objects) -> dict[str, Any]:
    """A pending job is parked at once; a running job parks after its current batch."""
    return _control(objects, job_id, "pause", user.actor)


@router.post("/{job_id}/resume", response_model=JobOut, responses=errors(401, 403, 404, 409))
def resume_job(user: AdminUser, job_id: JobId, objects: Objects) -> dict[str, Any]:
    """A paused job goes back to the queue (and continues from its checkpoint)."""
    return _control(objects, job_id, "resume", user.actor)


@router.post("/{job_id}/retry", status_code=202, response_model=JobAccepted,
             responses=errors(401, 403, 404, 409, 422))
def retry_job(user: AdminUser, job_id: JobId, objects: Objects, response: Response) -> dict[str, Any]:
    """A new job with the same input as a failed or cancelled one (``retry_of`` links them);
    answered like every job-creating endpoint (``JobAccepted`` + ``Location``)."""
    return accepted(objects, objects.jobs.retry(job_id, created_by=user.username,
                                                          actor=user.actor), response)


# ----------------------------------------------------------------------------- events


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


@router.get(
    "/{job_id}/events", responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
              "description": "`event: job` with the job object as JSON data on every change; "
                             "ends after the snapshot that shows a finished job, or with `event: end` "
                             "(data: the error object) once the token or session is revoked."},
        **json_errors(401, 404),
    },
    response_class=EventStreamResponse,
)
async def job_events(
    _: CurrentUser, job_id: JobId, request: Request, manager: Manager, objects: Objects,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> EventStreamResponse:
    """Server-Sent Events: a job snapshot whenever the job changes.

    The first event is the current state; a comment line every 15 s keeps
    proxies from closing an idle stream. The stream ends after the snapshot
    of a completed, failed or cancelled job, or when the client goes away -
    or, once the token is revoked or expired (or the web session ended),
    with an ``end`` event whose data is the error object saying so.
    """
    first = await run_in_threadpool(manager.get, job_id)  # 404 before the stream starts
    recheck = credential_check(request, manager.engine, credentials)
    stream = JobEventStream(objects, first, request.is_disconnected, recheck=recheck,
                            recheck_seconds=manager.settings.event_stream_auth_seconds)
    return EventStreamResponse(stream.events(),
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


Ended = tuple[str, str]  # (error code, message) of a credential that no longer holds
CredentialCheck = Callable[[], Awaitable[Ended | None]]


def credential_check(request: Request, engine: sa.Engine,
                     credentials: HTTPAuthorizationCredentials | None) -> CredentialCheck:
    """How to tell, later, that what authenticated this request no longer holds.

    Straight to the database (no cache): the point is to notice a revocation
    made anywhere, within the stream's re-check interval.
    """
    if credentials is not None:
        token = credentials.credentials

        async def token_ended() -> Ended | None:
            if await run_in_threadpool(auth.authenticate_token, engine, token) is not None:
                return None
            return ("token_revoked", "The API token was revoked or has expired, so this event stream "
                    "is closed; authenticate again to keep watching.")

        return token_ended
    session = request.scope.get("session") or {}
    session_id, user = session.get(SESSION_ID_KEY), session.get("user") or {}

    async def session_ended() -> Ended | None:
        if await run_in_threadpool(_session_alive, engine, session_id, user):
            return None
        return ("session_ended", "Your web session has ended (logged out, expired, or the user was "
                "removed), so this event stream is closed; log in again to keep watching.")

    return session_ended


def _session_alive(engine: sa.Engine, session_id: Any, user: dict[str, Any]) -> bool:
    """The server-side session still exists (and so does its user)."""
    if isinstance(session_id, str) and session_id:
        return auth.session_owner(engine, session_id) is not None
    current = auth.get_user(engine, str(user.get("username", "")))  # a session without an id
    return current is not None and current.id == user.get("id")


class JobEventStream:
    """One watcher of one job: poll, diff, emit - and re-check the credential."""

    def __init__(self, objects: JobObjects, first: Job,
                 disconnected: Callable[[], Any], poll: float = SSE_POLL_SECONDS,
                 keepalive: float = SSE_KEEPALIVE_SECONDS, recheck: CredentialCheck | None = None,
                 recheck_seconds: float = SSE_AUTH_SECONDS) -> None:
        self.objects = objects
        self.job = first
        self.disconnected = disconnected
        self.poll = poll
        self.keepalive = keepalive
        self.recheck = recheck
        self.recheck_seconds = recheck_seconds

    async def events(self) -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        yield await self._snapshot(self.job)
        last_sent = time.monotonic()
        next_check = time.monotonic() + self.recheck_seconds
        seen = _signature(self.job)
        while not self.job.is_terminal:
            await anyio.sleep(self.poll)
            if await self.disconnected():
                return
            if self.recheck is not None and time.monotonic() >= next_check:
                ended = await self.recheck()
                if ended is not None:
                    yield _end_event(*ended, job_id=self.job.id)
                    return
                next_check = time.monotonic() + self.recheck_seconds
            self.job = await run_in_threadpool(self.objects.get, self.job.id)
            if _signature(self.job) != seen:
                seen = _signature(self.job)
                yield await self._snapshot(self.job)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= self.keepalive:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()

    async def _snapshot(self, job: Job) -> str:
        data = await run_in_threadpool(self.objects.job_dict, job)
        return f"event: job\nid: {job.updated_at.isoformat()}\ndata: {json.dumps(data)}\n\n"


def _end_event(code: str, message: str, job_id: str) -> str:
    """The last event of a stream closed by the server, in the API's error shape."""
    body = {"error": {"code": code, "message": message, "details": {"job_id": job_id}}}
    return f"event: end\ndata: {json.dumps(body)}\n\n"


def _signature(job: Job) -> tuple[Any, ...]:
    """What makes a new snapshot worth sending."""
    return (job.updated_at, job.status, job.processed, job.total, job.control, job.error_count,
            job.phase, job.archived_at)
