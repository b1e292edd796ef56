"""A locked or full database is a 503 that says so, and a job says why it stopped.

Everything here breaks real storage, on both backends:

* **locked** - SQLite: another connection holds ``BEGIN EXCLUSIVE``;
  PostgreSQL: another session holds ``LOCK TABLE ... IN ACCESS EXCLUSIVE
  MODE``. The live server (``COCOA_REQUEST_LOCK_WAIT_SECONDS=1``) must answer
  imports, geocoding, token creation and a web form with 503 + Retry-After
  and a message naming the lock, within seconds (it was a bare 500 after
  30 s), and ``/readyz`` must say not ready (it said ready).
* **low disk** - ``COCOA_MIN_FREE_DISK_MB`` above the real free space makes
  ``/readyz`` 503 on SQLite; on PostgreSQL it says the disk is not visible.
* **a worker's write fails** - SQLite: ``PRAGMA max_page_count`` pinned just
  above the file's size makes the batch's write fail with SQLite's own
  SQLITE_FULL ("database or disk is full"), exactly as a full disk does once
  the file cannot grow. PostgreSQL: the server cannot be made to run out of
  disk here, so its honest equivalent is the other storage failure a worker
  meets for real - ``lock_timeout`` (set on the database with ``ALTER
  DATABASE``, as an operator would) expiring on a table another session has
  locked: SQLSTATE 55P03 from the server. Either way the job must show
  "Attempt N stopped: ..." while it waits for its retry, fail as poison
  after the limit quoting it, and clear it if a later attempt completes.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from tests.conftest import PG_ADMIN_URL, LiveServer, start_live_server, stop_live_server

from cocoa.api.job_objects import JobObjects
from cocoa.config import Settings
from cocoa.db.storage import storage_problem
from cocoa.jobs.manager import JobManager
from cocoa.jobs.model import Job, Status
from cocoa.jobs.types import Batch, Checkpoint, CreateContext, Params, RunContext, register
from cocoa.jobs.worker import Worker

LOCK_WAIT_SECONDS = 1
ANSWER_DEADLINE = 10.0  # seconds; the lock wait is 1 s, the old behaviour was a 500 after 30 s
VOTER_CSV = b"first_name,last_name,address,city,state,zip\nAda,Lovelace,1 Main St,Durham,NC,27701\n"


# --------------------------------------------------------------------------- holding a lock


@contextmanager
def database_locked(db_url: str) -> Iterator[None]:
    """Another process's write lock: the whole SQLite file, or PostgreSQL's
    ``jobs`` and ``api_tokens`` tables (reads of them wait too)."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as pg:
        pg.execute("LOCK TABLE jobs, api_tokens IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg.rollback()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_busy(response: httpx.Response, seconds: float) -> dict[str, Any]:
    """503 + Retry-After + a message that names the lock, answered soon."""
    assert response.status_code == 503, f"{response.status_code} {response.text[:500]}"
    assert seconds < ANSWER_DEADLINE, f"answered after {seconds:.1f}s"
    retry_after = response.headers.get("retry-after", "")
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, retry_after
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "database_busy", error
    assert "busy" in error["message"] and "try again" in error["message"], error
    return error


@pytest.fixture
def locked_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """No worker (nothing else takes locks); tokens cached, so a request is
    refused by the lock on the table it writes, not by authentication."""
    server = start_live_server(db_url, tmp_path, worker=False,
                               COCOA_REQUEST_LOCK_WAIT_SECONDS=str(LOCK_WAIT_SECONDS),
                               COCOA_TOKEN_CACHE_SECONDS="600")
    yield server
    stop_live_server(server)


def web_login(client: httpx.Client) -> str:
    """Log in through the web form; the CSRF token of the session."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    answer = client.post("/login", data={"username": "admin", "password": "admin-password",
                                         "csrf_token": token.group(1), "next": "/jobs"},
                         headers={"X-CSRF-Token": token.group(1)})
    assert answer.status_code == 303, answer.text[:500]
    start = client.get("/start/geocode")
    token = re.search(r'name="csrf_token" value="([^"]+)"', start.text)
    assert start.status_code == 200 and token, start.text[:500]
    return token.group(1)


# --------------------------------------------------------------------------- the API while locked


def test_a_locked_database_is_503_with_retry_after_on_writes_and_readiness(locked_server: LiveServer) -> None:
    server = locked_server
    with server.client() as admin, httpx.Client(base_url=server.url, timeout=60) as anonymous:
        assert admin.get("/api/v1/jobs").status_code == 200  # the token is now cached
        with database_locked(server.db_url):
            geocode, seconds = timed(lambda: admin.post("/api/v1/jobs/geocoding", json={}))
            assert_busy(geocode, seconds)
            upload, seconds = timed(lambda: admin.post(
                "/api/v1/voters/import", files={"file": ("voters.csv", VOTER_CSV, "text/csv")}))
            assert_busy(upload, seconds)
            token, seconds = timed(lambda: anonymous.post("/api/v1/auth/tokens", json={
                "username": "admin", "password": "admin-password", "name": "while locked"}))
            assert_busy(token, seconds)
            ready, seconds = timed(lambda: anonymous.get("/readyz"))
            assert_busy(ready, seconds)
        # The lock is gone: the same requests are answered, so the 503s were the lock.
        after = admin.post("/api/v1/voters/import", files={"file": ("voters.csv", VOTER_CSV, "text/csv")})
        assert after.status_code == 202, after.text
        assert admin.post("/api/v1/jobs/geocoding", json={}).status_code in (202, 422)  # 422: none to geocode
        assert anonymous.post("/api/v1/auth/tokens", json={"username": "admin", "password": "admin-password",
                                                           "name": "after"}).status_code == 201
        assert anonymous.get("/readyz").json()["status"] == "ready"


def test_a_web_form_gets_a_503_page_with_retry_after(locked_server: LiveServer) -> None:
    with httpx.Client(base_url=locked_server.url, timeout=60) as browser:
        csrf = web_login(browser)
        form = {"csrf_token": csrf, "provider": "local"}
        headers = {"Accept": "text/html", "X-CSRF-Token": csrf}
        with database_locked(locked_server.db_url):
            page, seconds = timed(lambda: browser.post("/start/geocode", data=form, headers=headers))
        assert page.status_code == 503, page.text[:500]
        assert seconds < ANSWER_DEADLINE
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["retry-after"].isdigit()
        assert "The database is busy" in page.text and "try again" in page.text
        after = browser.post("/start/geocode", data=form, headers=headers, follow_redirects=False)
        # Once the lock is gone the form is handled (422: no households to geocode in this database).
        assert after.status_code in (303, 422), after.text[:500]


# --------------------------------------------------------------------------- readiness and free space


def test_readiness_fails_when_free_space_is_below_the_threshold(db_url: str, tmp_path: Path) -> None:
    server = start_live_server(db_url, tmp_path, worker=False, COCOA_MIN_FREE_DISK_MB=str(10**12))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as anonymous:
            ready = anonymous.get("/readyz")
    finally:
        stop_live_server(server)
    if db_url.startswith("sqlite"):
        assert ready.status_code == 503, ready.text
        error = ready.json()["error"]
        assert error["code"] == "low_disk_space"
        assert str(tmp_path) in error["message"] and "COCOA_MIN_FREE_DISK_MB" in error["message"]
        assert error["details"]["free_mb"] < error["details"]["min_free_mb"]
        assert ready.headers["retry-after"].isdigit()
    else:  # the server's disk is not visible from here: ready, and it says the disk was not checked
        assert ready.status_code == 200, ready.text
        assert ready.json()["disk"]["checked"] is False
        assert "PostgreSQL" in ready.json()["disk"]["reason"]


def test_readiness_reports_the_free_space_it_checked(module_server_sqlite: LiveServer) -> None:
    with httpx.Client(base_url=module_server_sqlite.url, timeout=30) as anonymous:
        body = anonymous.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["disk"]["checked"] is True and body["disk"]["free_mb"] >= body["disk"]["min_free_mb"] == 100


@pytest.fixture
def module_server_sqlite(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_live_server(sqlite_url, tmp_path, worker=False)
    yield server
    stop_live_server(server)


# --------------------------------------------------------------------------- a worker's write fails


ballast = sa.Table("test_storage_ballast", sa.MetaData(),
                   sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                   sa.Column("job_id", sa.String(36), nullable=False),
                   sa.Column("data", sa.LargeBinary, nullable=False))
BALLAST_BYTES = 256 * 1024  # 64 SQLite pages: more than the room left when "full"


class BallastJob:
    """Writes a quarter megabyte per batch, three batches."""

    name: ClassVar[str] = "test_storage_ballast"
    needs_upload: ClassVar[bool] = False
    hidden: ClassVar[bool] = True
    batch_size_setting: ClassVar[str] = "batch_size"
    uses_helpers: ClassVar[bool] = False

    def validate(self, ctx: CreateContext) -> Params:
        return {}

    def plan(self, ctx: RunContext) -> int:
        return 3

    def run_batch(self, ctx: RunContext, checkpoint: Checkpoint | None) -> Batch:
        item = int((checkpoint or {}).get("next", 0))
        job_id = ctx.job_id

        def write(conn: sa.Connection) -> None:
            conn.execute(ballast.insert().values(job_id=job_id, data=b"\x5a" * BALLAST_BYTES))

        return Batch(checkpoint={"next": item + 1}, processed=1, succeeded=1, done=item + 1 >= 3, write=write)


register(BallastJob())


class BrokenStorage:
    """Makes the ballast table's writes fail for real, and mends them again."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._holder: psycopg.Connection[Any] | None = None
        ballast.create(engine)

    def break_(self) -> None:
        if self.sqlite:
            with self.engine.connect() as conn:
                pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
            self._limit = pages + 16  # room for the job row's updates, none for the ballast
            sa.event.listen(self.engine, "connect", self._pin_size)
        else:
            database = self.engine.url.database
            with psycopg.connect(sa.make_url(PG_ADMIN_URL).set(drivername="postgresql")
                                 .render_as_string(hide_password=False), autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{database}" SET lock_timeout = \'300ms\'')
            self._holder = psycopg.connect(self.engine.url.set(drivername="postgresql")
                                           .render_as_string(hide_password=False))
            self._holder.execute("LOCK TABLE test_storage_ballast IN ACCESS EXCLUSIVE MODE")
        self.engine.dispose()  # every connection from now on is a new one, under the new rules

    def mend(self) -> None:
        if self.sqlite and sa.event.contains(self.engine, "connect", self._pin_size):
            sa.event.remove(self.engine, "connect", self._pin_size)
        elif self._holder is not None:
            self._holder.rollback()
            self._holder.close()
            self._holder = None
        self.engine.dispose()

    def _pin_size(self, dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {self._limit}")

    def expected_words(self) -> str:
        return "database or disk is full" if self.sqlite else "The database is busy"


@pytest.fixture
def storage(db_engine: sa.Engine) -> Iterator[BrokenStorage]:
    broken = BrokenStorage(db_engine)
    broken.break_()
    yield broken
    broken.mend()


@contextmanager
def running(manager: JobManager) -> Iterator[Worker]:
    worker = Worker(manager, worker_id="storage-test")
    thread = worker.start_in_thread()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)


def wait_for_job(manager: JobManager, job_id: str, predicate: Callable[[Job], bool],
                 what: str, timeout: float = 30.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = manager.get(job_id)
        if predicate(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; job is {job.status.value}, error={job.error!r}")
        time.sleep(0.02)  # poll with a deadline


def ballast_rows(engine: sa.Engine, job_id: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(ballast)
                                .where(ballast.c.job_id == job_id)).scalar_one())


def worker_settings(poison_limit: int) -> Settings:
    return Settings(poll_seconds=0.05, heartbeat_seconds=0.2, lease_seconds=1, reaper_seconds=0.2,
                    poison_limit=poison_limit)


def test_a_storage_error_shows_on_the_job_and_fails_it_after_the_poison_limit(
        db_engine: sa.Engine, storage: BrokenStorage) -> None:
    manager = JobManager(db_engine, worker_settings(poison_limit=3))
    job = manager.create(BallastJob.name, {}, created_by="tester")
    with running(manager):
        waiting = wait_for_job(manager, job.id, lambda j: bool(j.error) and "Attempt 1 stopped" in j.error,
                               "the first attempt's error on the job")
        shown = JobObjects(manager).job_object(job.id)  # what GET /api/v1/jobs/{id} answers
        final = wait_for_job(manager, job.id, lambda j: j.is_terminal, "the poison limit")
    assert waiting.status in (Status.PROCESSING, Status.PENDING)  # still to be retried
    assert storage.expected_words() in (waiting.error or "")
    assert shown["error"] and "Attempt 1 stopped" in shown["error"] and shown["status"] != "failed"
    assert final.status is Status.FAILED and final.crash_count == 3
    assert final.error is not None and "Poison" in final.error
    assert "Attempt 3 stopped" in final.error and storage.expected_words() in final.error
    assert "try again" not in final.error  # advice for clients; the engine retries by itself
    storage.mend()  # PostgreSQL: the held lock would block the count too
    assert ballast_rows(db_engine, job.id) == 0  # every failed batch rolled back whole


def test_the_error_clears_when_a_later_attempt_completes(db_engine: sa.Engine, storage: BrokenStorage) -> None:
    manager = JobManager(db_engine, worker_settings(poison_limit=50))
    job = manager.create(BallastJob.name, {}, created_by="tester")
    with running(manager):
        wait_for_job(manager, job.id, lambda j: bool(j.error) and "stopped" in j.error, "an attempt to stop")
        storage.mend()
        final = wait_for_job(manager, job.id, lambda j: j.is_terminal, "completion after the mend")
    assert final.status is Status.COMPLETED, final.error
    assert final.error is None and final.crash_count >= 1
    assert ballast_rows(db_engine, job.id) == 3


# --------------------------------------------------------------------------- what counts as storage trouble


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "probe.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    return path


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("the action did not fail")


def test_real_sqlite_errors_are_classified(sqlite_file: Path) -> None:
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    waiting = sqlite3.connect(sqlite_file, timeout=0, isolation_level=None)
    locked = raised(lambda: waiting.execute("BEGIN IMMEDIATE"))
    holder.execute("ROLLBACK")
    full_conn = sqlite3.connect(sqlite_file)
    pages = full_conn.execute("PRAGMA page_count").fetchone()[0]
    full_conn.execute(f"PRAGMA max_page_count = {pages}")
    full = raised(lambda: full_conn.execute("INSERT INTO t (v) VALUES (?)", (b"x" * 100_000,)))
    read_only = raised(lambda: sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
                       .execute("INSERT INTO t (v) VALUES (x'00')"))
    bug = raised(lambda: full_conn.execute("INSERT INTO nowhere VALUES (1)"))
    codes = {name: (storage_problem(exc).code if storage_problem(exc) else None)  # type: ignore[union-attr]
             for name, exc in {"locked": locked, "full": full, "read_only": read_only, "bug": bug}.items()}
    assert codes == {"locked": "database_busy", "full": "database_full", "read_only": "database_read_only",
                     "bug": None}
    wrapped = sa.exc.OperationalError("INSERT ...", {}, full)  # as SQLAlchemy hands it on
    problem = storage_problem(wrapped, "the disk holding /srv/cocoa")
    assert problem is not None and "/srv/cocoa" in problem.message and problem.retry_after > 0
    for conn in (holder, waiting, full_conn):
        conn.close()


def test_real_postgres_errors_are_classified(pg_url: str) -> None:
    dsn = sa.make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn) as other:
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        other.execute("SET lock_timeout = '100ms'")
        lock_timeout = raised(lambda: other.execute("SELECT * FROM t"))
        holder.rollback()
        other.rollback()
        other.execute("SET TRANSACTION READ ONLY")
        read_only = raised(lambda: other.execute("INSERT INTO t VALUES (1)"))
        other.rollback()
        other.execute("INSERT INTO t VALUES (1)")
        duplicate = raised(lambda: other.execute("INSERT INTO t VALUES (1)"))
        other.rollback()
    closed_port = raised(lambda: psycopg.connect("postgresql://postgres@127.0.0.1:1/x", connect_timeout=2))
    codes = {name: (storage_problem(exc).code if storage_problem(exc) else None)  # type: ignore[union-attr]
             for name, exc in {"lock_timeout": lock_timeout, "read_only": read_only, "duplicate": duplicate,
                               "closed_port": closed_port}.items()}
    assert codes == {"lock_timeout": "database_busy", "read_only": "database_read_only", "duplicate": None,
                     "closed_port": "database_unreachable"}


def test_only_the_drivers_own_errors_count() -> None:
    """A job type using the raw driver connection raises unwrapped errors;
    the same words in any other exception are not storage trouble."""
    assert storage_problem(sqlite3.OperationalError("database is locked")) is not None
    assert storage_problem(ValueError("database is locked")) is None
