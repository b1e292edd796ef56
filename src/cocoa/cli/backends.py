"""One interface for the commands that inspect, control and start jobs, over
the local database (:class:`LocalBackend`) or a server's HTTP API
(:class:`HttpBackend`).

Both speak the public job object (docs/api.md's ``JobOut``), so ``cocoa jobs``,
``cocoa import`` and ``cocoa geocode`` print the same thing either way; what
differs - reaching a database or a server, how a failure reads - stays here.
Administrative commands (``db``, ``user``, ``token``) are local only and do
not use this module.
"""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from cocoa.api.job_objects import JobObjects, public_dict
from cocoa.api.unpacking import create_plain, create_unpacked
from cocoa.jobs.manager import JobManager, UploadSource
from cocoa.jobs.model import TERMINAL
from cocoa.jobs.search import AmbiguousJobId

API = "/api/v1"
UPLOAD_ROUTES = {"import_voters": "/voters/import", "parcel_import": "/gis/parcels/import"}
JSON_ROUTES = {"geocode_households": "/jobs/geocoding"}


class BackendError(Exception):
    """A failure to print as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Backend(Protocol):
    """What the job commands need, as public job objects (plain dicts)."""

    def resolve(self, text: str) -> str: ...
    def job(self, job_id: str) -> dict[str, Any]: ...
    def list_jobs(self, *, status: str | None, type_name: str | None, limit: int,
                  include_all: bool) -> tuple[list[dict[str, Any]], int]: ...
    def errors(self, job_id: str, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]: ...
    def history(self, job_id: str) -> list[dict[str, Any]] | None: ...
    def control(self, job_id: str, action: str) -> dict[str, Any]: ...
    def retry(self, job_id: str) -> dict[str, Any]: ...
    def create(self, type_name: str, request: dict[str, Any], path: Path | None) -> dict[str, Any]: ...
    def follow(self, job_id: str, interval: float) -> Iterator[dict[str, Any]]: ...


def is_terminal(job: dict[str, Any]) -> bool:
    return str(job["status"]) in {s.value for s in TERMINAL}


# --------------------------------------------------------------------------- local


class LocalBackend:
    """The jobs engine over the configured database (errors are mapped by
    :func:`cocoa.cli.common.local_manager`)."""

    def __init__(self, manager: JobManager) -> None:
        self.manager = manager
        self.objects = JobObjects(manager)

    def resolve(self, text: str) -> str:
        try:
            return self.manager.resolve(text)
        except AmbiguousJobId as exc:
            raise BackendError(str(exc), 4) from None

    def job(self, job_id: str) -> dict[str, Any]:
        return self.objects.job_object(job_id)

    def list_jobs(self, *, status: str | None, type_name: str | None, limit: int,
                  include_all: bool) -> tuple[list[dict[str, Any]], int]:
        found, total = self.manager.list_jobs(status=status, type_name=type_name, limit=limit,
                                              include_archived=include_all, include_hidden=include_all)
        return self.objects.job_dicts(found), total

    def errors(self, job_id: str, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        return self.manager.errors(job_id, limit=limit, offset=offset)

    def history(self, job_id: str) -> list[dict[str, Any]] | None:
        return [event.as_dict() for event in self.manager.history(job_id)]

    def control(self, job_id: str, action: str) -> dict[str, Any]:
        return public_dict(self.manager.control(job_id, action, actor=local_actor()))

    def retry(self, job_id: str) -> dict[str, Any]:
        return public_dict(self.manager.retry(job_id, created_by="cli", actor=local_actor()))

    def create(self, type_name: str, request: dict[str, Any], path: Path | None) -> dict[str, Any]:
        if path is None:
            return public_dict(self.manager.create(type_name, request, created_by="cli", actor=local_actor()))
        # A voter file may be a .zip/.gz, read as the API reads it (cocoa.api.unpacking).
        create = create_unpacked if type_name == "import_voters" else create_plain
        with path.open("rb") as stream:
            return public_dict(create(self.manager, type_name, request, UploadSource(stream, path.name, None),
                                      created_by="cli", actor=local_actor()))

    def follow(self, job_id: str, interval: float) -> Iterator[dict[str, Any]]:
        """Snapshots by polling the database until the job ends."""
        while True:
            job = self.objects.job_object(job_id)
            yield job
            if is_terminal(job):
                return
            time.sleep(interval)  # the refresh rate of a progress display, not synchronisation


def local_actor() -> str:
    """Who the history records for a command run against the database: the
    operating-system user, since there is no API user to name."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (a container), no LOGNAME
        return "cli"


# --------------------------------------------------------------------------- HTTP


class HttpBackend:
    """The server's HTTP API with a bearer token."""

    def __init__(self, url: str, token: str, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = client or httpx.Client(
            base_url=self.url + API, headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, read=120.0), follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    # -- plumbing

    def _call(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = self.client.request(method, path, **options)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return self._body(response)

    def _unreachable(self, exc: Exception) -> BackendError:
        return BackendError(f"Cannot reach the Cocoa server at {self.url} ({exc or type(exc).__name__}): "
                            "check the URL (--url, COCOA_URL or `cocoa login`) and that the server runs.", 2)

    def _body(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise http_error(response, self.url)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise BackendError(f"{self.url} answered {response.request.url.path} with something that is "
                               "not the Cocoa API (no JSON): is this the server's base URL?", 2) from None

    # -- the interface

    def resolve(self, text: str) -> str:
        """The server resolves a unique prefix in the path (an ambiguous one is
        a 409 ``ambiguous_job_id`` naming the candidates)."""
        return str(self.job(quote(text.strip(), safe=""))["id"])  # text, never a path of its own

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/jobs/{job_id}"))

    def list_jobs(self, *, status: str | None, type_name: str | None, limit: int,
                  include_all: bool) -> tuple[list[dict[str, Any]], int]:
        params: dict[str, Any] = {"limit": limit, "include_archived": str(include_all).lower()}
        if status:
            params["status"] = status
        if type_name:
            params["type"] = type_name
        body = self._call("GET", "/jobs", params=params)
        return list(body["jobs"]), int(body["total"])

    def errors(self, job_id: str, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        body = self._call("GET", f"/jobs/{job_id}/errors", params={"limit": limit, "offset": offset})
        return list(body["errors"]), int(body["total"])

    def history(self, job_id: str) -> list[dict[str, Any]] | None:
        """``GET /jobs/{id}/history`` where the server has it; None where it does not."""
        try:
            body = self._call("GET", f"/jobs/{job_id}/history")
        except BackendError as exc:
            if exc.code == 4:  # an older server: no such route (the job itself was just read)
                return None
            raise
        events = body.get("history", body.get("events")) if isinstance(body, dict) else body
        return list(events) if isinstance(events, list) else None

    def control(self, job_id: str, action: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/jobs/{job_id}/{action}"))

    def retry(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/jobs/{job_id}/retry")["job"])

    def create(self, type_name: str, request: dict[str, Any], path: Path | None) -> dict[str, Any]:
        if type_name in JSON_ROUTES:
            body = self._call("POST", JSON_ROUTES[type_name], json=request)
        elif path is not None and type_name in UPLOAD_ROUTES:
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in request.items()}
            with path.open("rb") as stream:
                body = self._call("POST", UPLOAD_ROUTES[type_name], data=form,
                                  files={"file": (path.name, stream, "application/octet-stream")})
        else:
            raise BackendError(f"The HTTP API cannot start {type_name!r} jobs.", 6)
        return dict(body["job"])

    def follow(self, job_id: str, interval: float) -> Iterator[dict[str, Any]]:
        """Snapshots from the job's event stream (``GET /jobs/{id}/events``);
        a stream that drops before the job ends is opened again."""
        while True:
            last: dict[str, Any] | None = None
            for last in self._events(job_id):
                yield last
            if last is not None and is_terminal(last):
                return
            job = self.job(job_id)  # the stream dropped: where are we?
            if is_terminal(job):
                yield job
                return
            time.sleep(interval)  # before reconnecting, not synchronisation

    def _events(self, job_id: str) -> Iterator[dict[str, Any]]:
        try:
            with self.client.stream("GET", f"/jobs/{job_id}/events",
                                    headers={"Accept": "text/event-stream"}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise http_error(response, self.url)
                for event, data in sse_events(response.iter_lines()):
                    if event == "job":
                        yield json.loads(data)
                    elif event == "end":
                        raise _end_of_stream(data)
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.ConnectError):
                raise self._unreachable(exc) from None
            return  # a dropped stream: follow() reconnects


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """``(event, data)`` pairs of a Server-Sent Events stream (comments and
    ``retry``/``id`` fields skipped; multi-line data joined by newlines)."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


def _end_of_stream(data: str) -> BackendError:
    try:
        error = json.loads(data)["error"]
        return BackendError(f"{error['message']} ({error['code']})", 7)
    except (ValueError, KeyError, TypeError):
        return BackendError(f"The server closed the event stream: {data}", 1)


def http_error(response: httpx.Response, url: str) -> BackendError:
    """A one-line message for an error response, with what to do about it."""
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):  # a proxy's page, another web server: not the Cocoa API
        return BackendError(f"{response.request.url} answered HTTP {response.status_code} "
                            f"{response.reason_phrase}, not in the Cocoa API's error shape: is {url} "
                            "the server's base URL, and is the server up behind its proxy?", 2)
    status = response.status_code
    if _error_code(response) == "ambiguous_job_id":
        return BackendError(message, 4)
    if status == 401:
        return BackendError(f"The server at {url} refused the API token: {message} Get a new one with "
                            f"`cocoa login {url}` (or set COCOA_TOKEN).", 7)
    if status == 403:
        return BackendError(f"Not allowed: {message} (this needs an admin's token).", 7)
    exit_code = {404: 4, 409: 5, 400: 6, 413: 6, 415: 6, 422: 6}.get(status, 1)
    return BackendError(message, exit_code)


def _error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None
