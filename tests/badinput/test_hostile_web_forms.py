"""Hostile bodies sent to the web forms: nothing is read before the caller is
known to be allowed, and never more than the form's cap.

The finding this guards: ``POST /login``, ``/logout``, ``/jobs/{id}/{action}``
and ``/start/{slug}`` called ``request.form()`` with Starlette's defaults, so a
client with no session at all made the server spool a body of any size to a
temporary file before it was told 401. Anyone who could reach the port could
fill the disk.

Two ways of looking, both against a real ``cocoa serve`` on loopback:

* **The answer comes before the body.** A raw socket declares a 50 MB body,
  sends 64 KiB of it and waits for the answer. A server that reads the body
  before deciding would wait for the rest, and the test would time out.
* **No temporary file grows.** The server runs with ``TMPDIR`` set to a
  folder of the test's own; while a whole 50 MB body streams in (chunked, and
  again with ``Content-Length``), a watcher polls the server process's open
  files (``/proc/<pid>/fd``: Starlette's spool files are unlinked at once, so
  a directory listing alone would not see them) and the folder, and records
  the largest file under it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)
from hostile_helpers import Database, page_csrf, web_session

from cocoa.config import Settings
from cocoa.db.engine import make_engine
from cocoa.jobs.manager import JobManager

BIG = 50 * 1024 * 1024  # the hostile body
CHUNK = 1024 * 1024
SMALL_FORM_CAP = 8 * 1024  # login, logout, job controls, the geocoding form
UPLOAD_LIMIT = 1024 * 1024  # COCOA_MAX_UPLOAD_BYTES of the test server
UPLOAD_SLACK = 64 * 1024  # multipart framing and the text fields next to the file
ANSWER_DEADLINE = 10.0  # seconds for an answer that must not wait for the body
BOUNDARY = "hostile"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"
START_FORMS = ("/start/voters", "/start/parcels", "/start/geocode")


# ============================================================================ the server


@dataclass
class Web:
    """A live server without a worker, its private TMPDIR and a parked job."""

    server: root.LiveServer
    tmpdir: Path
    job_id: str

    def client(self) -> httpx.Client:
        """A cookie-keeping client with no credentials at all."""
        return httpx.Client(base_url=self.server.url, timeout=60, follow_redirects=False)

    def logged_in(self, username: str) -> AbstractContextManager[tuple[httpx.Client, str]]:
        """A client with a web session of ``username``, and its CSRF token."""
        return web_session(self.server.url, username)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    data_dir = tmp_path_factory.mktemp("hostile_web")
    tmpdir = data_dir / "server-tmp"
    tmpdir.mkdir()
    with Database(request.param, data_dir) as url:
        server = root.start_live_server(url, data_dir, worker=False, TMPDIR=str(tmpdir),
                                        COCOA_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT))
        manager = JobManager(make_engine(url), Settings(database_url=url, data_dir=data_dir))
        try:
            job = manager.create("noop", {"items": 5}, created_by="admin")
            manager.control(job.id, "pause")  # parked: every control action has something to do
            yield Web(server, tmpdir, job.id)
        finally:
            manager.engine.dispose()
            root.stop_live_server(server)


# ============================================================================ helpers


class TempWatch:
    """The largest file the server process holds open under (or keeps in) its TMPDIR.

    Polled every few milliseconds from a thread while a request runs; a 50 MB
    spool file takes far longer than that to write, so it cannot slip by.
    """

    def __init__(self, web: Web) -> None:
        self.pid = web.server.process.pid
        self.tmpdir = str(web.tmpdir)
        self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TempWatch:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._look()  # once more after the answer: a file kept after the request counts too
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._look()
            self._stop.wait(0.003)

    def _look(self) -> None:
        fd_dir = f"/proc/{self.pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            return
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}").startswith(self.tmpdir):
                    self.largest = max(self.largest, os.stat(f"{fd_dir}/{fd}").st_size)
            except OSError:
                continue  # closed meanwhile
        for path in Path(self.tmpdir).rglob("*"):
            try:
                self.largest = max(self.largest, path.stat().st_size)
            except OSError:
                continue


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def answer_before_body(web: Web, path: str, headers: dict[str, str], cookies: httpx.Cookies | None = None,
                       declared: int = BIG, sent: int = 64 * 1024) -> Answer:
    """Declare ``declared`` body bytes, send only ``sent`` of them, and read the answer.

    A server that reads (or spools) the body before deciding waits for the
    rest, and this fails at the deadline instead of answering.
    """
    parts = urlsplit(web.server.url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {declared}",
             "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    if cookies:
        lines.append("Cookie: " + "; ".join(f"{name}={value}" for name, value in cookies.items()))
    with socket.create_connection((parts.hostname, parts.port), timeout=ANSWER_DEADLINE) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b"x" * sent)
        received = _receive_answer(sock, path)
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return Answer(int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, body)


def _receive_answer(sock: socket.socket, path: str) -> bytes:
    """Bytes until the answer's head and its Content-Length worth of body are in
    (or the server closes: it may reset a connection whose body it never read)."""
    received = b""
    while True:
        head, sep, body = received.partition(b"\r\n\r\n")
        if sep:
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if length is None or len(body) >= int(length.group(1)):
                return received
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"no answer to {path} within {ANSWER_DEADLINE}s: "
                                 "the server waits for the body") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            assert sep, f"{path}: connection closed without an answer"
            return received
        received += chunk


def big_chunks(prefix: bytes = b"", size: int = BIG) -> Iterator[bytes]:
    """``size`` bytes in 1 MiB chunks: sent chunked unless a Content-Length is given."""
    if prefix:
        yield prefix
    for _ in range(size // CHUNK):
        yield b"x" * CHUNK


def multipart_file_head(field: str = "file", filename: str = "big.csv") -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n").encode()


def post_big(web: Web, client: httpx.Client, path: str, *, content_type: str, with_length: bool,
             prefix: bytes = b"", headers: dict[str, str] | None = None) -> tuple[httpx.Response, int]:
    """POST a whole 50 MB body (chunked, or with Content-Length); the answer
    and the largest temporary file the server held meanwhile."""
    sent_headers = {"Content-Type": content_type, **(headers or {})}
    if with_length:
        sent_headers["Content-Length"] = str(len(prefix) + BIG)
    with TempWatch(web) as watch:
        response = client.post(path, content=big_chunks(prefix), headers=sent_headers)
    return response, watch.largest


def assert_to_login(status: int, headers: Any) -> None:
    assert status == 303, status
    assert headers["location"].startswith("/login"), headers["location"]


# ============================================================================ no session at all

ANONYMOUS_ROUTES = ["/login", "/logout", "/jobs/{job}/cancel", *START_FORMS]


@pytest.mark.parametrize("path", ANONYMOUS_ROUTES)
def test_anonymous_post_is_answered_before_its_body(web: Web, path: str) -> None:
    path = path.format(job=web.job_id)
    answer = answer_before_body(web, path, {"Content-Type": MULTIPART})
    if path == "/login":  # no session, so no CSRF token it could match
        assert answer.status == 403, answer
        assert b"expired" in answer.body
    else:
        assert_to_login(answer.status, answer.headers)


@pytest.mark.parametrize("path", START_FORMS)
def test_anonymous_upload_script_gets_401_before_its_body(web: Web, path: str) -> None:
    """The upload script asks for JSON: it hears 401 in the error shape."""
    answer = answer_before_body(web, path, {"Content-Type": MULTIPART, "Accept": "application/json",
                                            "X-Requested-With": "XMLHttpRequest"})
    assert answer.status == 401, answer
    assert json.loads(answer.body)["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("with_length", [False, True], ids=["chunked", "content-length"])
@pytest.mark.parametrize("path", ANONYMOUS_ROUTES)
def test_anonymous_50mb_body_spools_nothing(web: Web, path: str, with_length: bool) -> None:
    path = path.format(job=web.job_id)
    with web.client() as client:
        response, largest = post_big(web, client, path, content_type=MULTIPART, with_length=with_length,
                                     prefix=multipart_file_head())
    if path == "/login":
        assert response.status_code == 403, response.text[:300]
    else:
        assert_to_login(response.status_code, response.headers)
    assert largest == 0, f"{path}: the server spooled {largest:,} bytes of an anonymous body"


# ============================================================================ a login page's session


def test_login_form_is_capped_at_a_few_kilobytes(web: Web) -> None:
    """A visitor who opened the login page has a CSRF token, so the body must
    be read - through the 8 KiB cap, and without files."""
    with web.client() as client:
        token = page_csrf(client)
        early = answer_before_body(web, "/login", {"Content-Type": URLENCODED}, client.cookies)
        assert early.status == 413, early
        for with_length in (False, True):
            response, largest = post_big(web, client, "/login", content_type=URLENCODED, with_length=with_length,
                                         prefix=f"csrf_token={token}&username=admin&password=".encode())
            assert response.status_code == 413, response.text[:300]
            assert "8,192 bytes" in response.text
            assert largest <= SMALL_FORM_CAP
        response, largest = post_big(web, client, "/login", content_type=MULTIPART, with_length=False,
                                     prefix=multipart_file_head())
        assert response.status_code in (400, 413), response.text[:300]
        assert largest == 0, f"a file part on the login form was spooled ({largest:,} bytes)"


def test_login_form_refuses_files_and_odd_content_types(web: Web) -> None:
    with web.client() as client:
        token = page_csrf(client)
        with_file = client.post("/login", data={"csrf_token": token, "username": "admin",
                                                "password": "admin-password"},
                                files={"avatar": ("a.png", b"\x89PNG", "image/png")})
        assert with_file.status_code == 400, with_file.text[:300]
        assert "file" in with_file.text.lower()
        as_json = client.post("/login", json={"csrf_token": token, "username": "admin"})
        assert as_json.status_code == 415, as_json.text[:300]
        assert "application/x-www-form-urlencoded" in as_json.text
        # The same session still logs in with an ordinary form: nothing above was fatal.
        ok = client.post("/login", data={"csrf_token": token, "username": "admin", "password": "admin-password"})
        assert ok.status_code == 303, ok.text[:300]


# ============================================================================ a viewer


def test_viewer_is_refused_before_the_body_is_read(web: Web) -> None:
    with web.logged_in("viewer") as (viewer, token):
        for path in [*START_FORMS, f"/jobs/{web.job_id}/cancel"]:
            answer = answer_before_body(web, path, {"Content-Type": MULTIPART, "X-CSRF-Token": token},
                                        viewer.cookies)
            assert answer.status == 403, (path, answer)
            # Even with the CSRF token only in the (unread) form body: the role decides first.
            answer = answer_before_body(web, path, {"Content-Type": MULTIPART}, viewer.cookies)
            assert answer.status == 403, (path, answer)
        response, largest = post_big(web, viewer, "/start/voters", content_type=MULTIPART, with_length=False,
                                     prefix=multipart_file_head(), headers={"Accept": "application/json"})
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
        assert largest == 0


# ============================================================================ an admin


def test_admin_csrf_header_is_checked_before_the_body(web: Web) -> None:
    with web.logged_in("admin") as (admin, _):
        for path in [*START_FORMS, f"/jobs/{web.job_id}/cancel", "/logout"]:
            answer = answer_before_body(web, path, {"Content-Type": MULTIPART, "X-CSRF-Token": "forged"},
                                        admin.cookies)
            assert answer.status == 403, (path, answer)


def test_admin_small_forms_are_capped(web: Web) -> None:
    with web.logged_in("admin") as (admin, token):
        for path in (f"/jobs/{web.job_id}/cancel", "/start/geocode", "/logout"):
            early = answer_before_body(web, path, {"Content-Type": URLENCODED, "X-CSRF-Token": token},
                                       admin.cookies)
            assert early.status == 413, (path, early)
            response, largest = post_big(web, admin, path, content_type=URLENCODED, with_length=False,
                                         prefix=f"csrf_token={token}&x=".encode())
            assert response.status_code == 413, (path, response.text[:300])
            assert largest <= SMALL_FORM_CAP
        wrong_type = admin.post(f"/jobs/{web.job_id}/cancel", content=b"{}",
                                headers={"Content-Type": "application/json", "X-CSRF-Token": token})
        assert wrong_type.status_code == 415, wrong_type.text[:300]
        # The session survived every refusal, and the job was never touched.
        assert admin.get(f"/api/v1/jobs/{web.job_id}").json()["status"] == "paused"


@pytest.mark.parametrize("with_length", [False, True], ids=["chunked", "content-length"])
def test_admin_upload_over_the_limit_is_cut_off(web: Web, with_length: bool) -> None:
    with web.logged_in("admin") as (admin, token):
        response, largest = post_big(web, admin, "/start/voters", content_type=MULTIPART,
                                     with_length=with_length, prefix=multipart_file_head(),
                                     headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"]["code"] == "file_too_large"
    assert largest <= UPLOAD_LIMIT + UPLOAD_SLACK, f"spooled {largest:,} bytes"
    assert root.stray_uploads(web.server.db_url) == 0  # nothing stored while it streamed is kept


def test_plain_html_forms_still_work_with_the_token_in_the_body(web: Web) -> None:
    """No script: the CSRF token travels as a form field, so the body is read
    (after the session and role checks) and the forms still do their job."""
    with web.logged_in("admin") as (admin, token):
        csv = b"first_name,last_name,address,city,state,zip\nAda,Lovelace,1 Main St,Durham,NC,27701\n"
        started = admin.post("/start/voters", data={"csrf_token": token, "format": "simple_csv", "mode": "full"},
                             files={"file": ("voters.csv", csv, "text/csv")})
        assert started.status_code == 303, started.text[:500]
        assert re.fullmatch(r"/jobs/[0-9a-f-]{36}", started.headers["location"])
        paused = admin.post(f"/jobs/{web.job_id}/resume", data={"csrf_token": token})
        assert paused.status_code == 303, paused.text[:500]
        assert admin.post(f"/jobs/{web.job_id}/pause", data={"csrf_token": token}).status_code == 303
        out = admin.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        after = admin.get("/jobs")
        assert_to_login(after.status_code, after.headers)
