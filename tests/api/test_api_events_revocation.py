"""An event stream ends when its credential does.

``GET /api/v1/jobs/{id}/events`` can stay open for hours on a long or paused
job. It used to keep streaming after its token was revoked (or its web
session ended): authentication was checked once, when the stream opened. It
now re-checks every ``COCOA_EVENT_STREAM_AUTH_SECONDS`` (0.5 s here) and
closes with a last ``event: end`` whose data is the API's error object.

Over real HTTP against ``cocoa serve`` without a worker (a paused job stays
paused, so only the credential can end the stream), on both backends.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import assert_error, create_noop, manager_for, root

from cocoa.db.tables import api_tokens, sessions, users
from cocoa.jobs.manager import JobManager

RECHECK = 0.5  # COCOA_EVENT_STREAM_AUTH_SECONDS of the test server
END_DEADLINE = 10.0  # revocation to end of stream, with room for a loaded machine


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[root.LiveServer]:
    live = root.start_live_server(db_url, tmp_path, worker=False, COCOA_EVENT_STREAM_AUTH_SECONDS=str(RECHECK))
    yield live
    root.stop_live_server(live)


@pytest.fixture
def manager(server: root.LiveServer, tmp_path: Path) -> Iterator[JobManager]:
    mgr = manager_for(server, tmp_path)
    yield mgr
    mgr.engine.dispose()


@dataclass
class Event:
    name: str
    data: dict[str, Any]
    at: float  # time.monotonic() when it arrived


class Watcher:
    """Reads one event stream in a thread; ``events`` fill a queue until the server ends it."""

    def __init__(self, client: httpx.Client, job_id: str) -> None:
        self.client = client
        self.job_id = job_id
        self.events: queue.Queue[Event] = queue.Queue()
        self.status: int | None = None
        self.ended_at: float | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        name = "message"
        with self.client.stream("GET", f"/api/v1/jobs/{self.job_id}/events", timeout=60) as response:
            self.status = response.status_code
            for line in response.iter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    self.events.put(Event(name, json.loads(line.split(":", 1)[1]), time.monotonic()))
        self.ended_at = time.monotonic()

    def next_event(self, timeout: float = END_DEADLINE) -> Event:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout}s") from None

    def wait_end(self, timeout: float = END_DEADLINE) -> float:
        """When the server closed the stream (fails if it is still open at the deadline)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the stream was still open {timeout}s later"
        assert self.ended_at is not None
        return self.ended_at


def paused_job(manager: JobManager) -> str:
    job = create_noop(manager, items=10)
    manager.control(job.id, "pause")
    return job.id


def new_token(server: root.LiveServer, username: str) -> dict[str, Any]:
    with httpx.Client(base_url=server.url) as anonymous:
        response = anonymous.post("/api/v1/auth/tokens", json={"username": username,
                                                               "password": f"{username}-password",
                                                               "name": "stream"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_ended_by(watcher: Watcher, code: str, since: float) -> None:
    """The stream's last event is ``end`` with ``code``, soon after ``since``."""
    ended_at = watcher.wait_end()
    rest = []
    while not watcher.events.empty():
        rest.append(watcher.events.get())
    assert rest and rest[-1].name == "end", [e.name for e in rest]
    error = rest[-1].data["error"]
    assert error["code"] == code and error["details"] == {"job_id": watcher.job_id}
    assert "closed" in error["message"]
    assert ended_at - since < END_DEADLINE


def test_stream_ends_when_its_token_is_revoked(server: root.LiveServer, manager: JobManager) -> None:
    job_id = paused_job(manager)
    token = new_token(server, "viewer")
    with server.client(token["token"]) as viewer, server.client() as admin:
        watcher = Watcher(viewer, job_id)
        assert watcher.next_event().data["status"] == "paused"
        assert watcher.status == 200
        # Several re-checks pass while the token is valid: the stream still
        # delivers the next change.
        time.sleep(4 * RECHECK)  # the time under test, not synchronisation
        assert admin.post(f"/api/v1/jobs/{job_id}/resume").status_code == 200
        assert watcher.next_event().data["status"] == "pending"
        assert watcher.thread.is_alive()
        revoked_at = time.monotonic()
        assert admin.delete(f"/api/v1/auth/tokens/{token['id']}").status_code == 204
        assert_ended_by(watcher, "token_revoked", revoked_at)
        assert_error(viewer.get(f"/api/v1/jobs/{job_id}/events"), 401, "invalid_token")


def test_stream_ends_when_the_token_is_revoked_outside_the_server(
        server: root.LiveServer, manager: JobManager) -> None:
    """Revoked in the database directly (as the CLI or another host would):
    the server's token cache still trusts it, the re-check does not."""
    job_id = paused_job(manager)
    token = new_token(server, "admin")
    with server.client(token["token"]) as client:
        watcher = Watcher(client, job_id)
        watcher.next_event()
        revoked_at = time.monotonic()
        with manager.engine.begin() as conn:
            conn.execute(api_tokens.update().where(api_tokens.c.id == token["id"])
                         .values(revoked_at=sa.func.current_timestamp()))
        assert_ended_by(watcher, "token_revoked", revoked_at)


@contextmanager
def web_login(server: root.LiveServer, username: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client logged in through the web login form, and the CSRF token of its pages."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text)
        assert csrf
        response = client.post("/login", data={"username": username, "password": f"{username}-password",
                                               "csrf_token": csrf.group(1)}, follow_redirects=False)
        assert response.status_code == 303, response.text[:300]
        jobs = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/jobs").text)
        assert jobs
        yield client, jobs.group(1)


@pytest.mark.parametrize("how", ["logout", "user_deleted"])
def test_stream_ends_when_the_web_session_ends(server: root.LiveServer, manager: JobManager, how: str) -> None:
    job_id = paused_job(manager)
    with web_login(server, "viewer") as (browser, csrf), \
            httpx.Client(base_url=server.url, cookies=browser.cookies, timeout=30) as tab:
        watcher = Watcher(tab, job_id)  # the page's EventSource: the same cookie, its own connection
        assert watcher.next_event().data["status"] == "paused"
        ended_at = time.monotonic()
        if how == "logout":
            assert browser.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
        else:
            with manager.engine.begin() as conn:
                viewer_id = conn.execute(sa.select(users.c.id).where(users.c.username == "viewer")).scalar_one()
                conn.execute(sessions.delete().where(sessions.c.user_id == viewer_id))
                conn.execute(api_tokens.delete().where(api_tokens.c.user_id == viewer_id))
                conn.execute(users.delete().where(users.c.id == viewer_id))
        assert_ended_by(watcher, "session_ended", ended_at)


def test_stream_of_a_valid_token_is_not_ended(server: root.LiveServer, manager: JobManager) -> None:
    """The control case: with nothing revoked the stream runs until the job
    ends, and it ends with the job's last snapshot, not with ``end``."""
    job_id = paused_job(manager)
    with server.client() as admin:
        watcher = Watcher(admin, job_id)
        watcher.next_event()
        time.sleep(4 * RECHECK)  # the time under test, not synchronisation
        assert watcher.thread.is_alive()
        assert admin.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
        watcher.wait_end()
        names = []
        while not watcher.events.empty():
            names.append(watcher.events.get())
        assert [e.name for e in names] == ["job"] and names[-1].data["status"] == "cancelled"
