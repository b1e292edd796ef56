"""Shared fixtures: real SQLite files and a real PostgreSQL database.

PostgreSQL tests *fail* (never skip) when ``CI`` is set and the server is
unreachable; on a developer machine without PostgreSQL they skip with a
reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cocoa.db.engine import make_engine
from cocoa.db.tables import jobs, uploads
from cocoa.jobs.manager import JobManager
from cocoa.jobtypes.builtin import register_builtin_types

PG_ADMIN_URL = os.environ.get(
    "COCOA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True, scope="session")
def _builtin_job_types() -> None:
    """Register the shipped job types, as the app factory and the CLI do."""
    register_builtin_types()


def _pg_available() -> bool:
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def require_postgres() -> None:
    if _pg_available():
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}")
    pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    require_postgres()
    name = f"cocoa_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def module_database(backend: str, data_dir: Path) -> Iterator[str]:
    """A fresh database for a module-scoped server: a SQLite file in
    ``data_dir``, or a PostgreSQL database created and dropped like the
    ``pg_url`` fixture does per test. NullPool: the drop at teardown gets a
    fresh connection, not one a long run may have seen terminated."""
    if backend == "sqlite":
        yield f"sqlite:///{data_dir / 'cocoa.db'}"
        return
    require_postgres()
    name = f"cocoa_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cocoa.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once per backend: the contract-suite fixture."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


def migrated_manager(url: str) -> JobManager:
    """A JobManager (default settings) on a freshly migrated database."""
    from cocoa.config import Settings
    from cocoa.db.migrate import upgrade

    upgrade(url)
    return JobManager(make_engine(url), Settings())


@pytest.fixture
def db_engine(db_url: str) -> Iterator[sa.Engine]:
    """A migrated database on each backend."""
    from cocoa.db.migrate import upgrade

    upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


# --------------------------------------------------------------------------- live server

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import httpx  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cocoa_env(db_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """Environment for a real ``cocoa`` subprocess with test-friendly timings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCOA_")}
    env.update({
        "COCOA_DATABASE_URL": db_url, "COCOA_DATA_DIR": str(data_dir),
        "COCOA_POLL_SECONDS": "0.1", "COCOA_HEARTBEAT_SECONDS": "0.5",
        "COCOA_LEASE_SECONDS": "3", "COCOA_REAPER_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env


def stray_uploads(db_url: str) -> int:
    """Stored uploads no job refers to: what a refused or abandoned request
    must not leave behind (cocoa.jobs.uploads.UploadSink)."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(uploads).where(uploads.c.id.not_in(
                sa.select(jobs.c.upload_id).where(jobs.c.upload_id.is_not(None))))).scalar_one())
    finally:
        engine.dispose()


@dataclass
class LiveServer:
    url: str
    db_url: str
    admin_token: str
    viewer_token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_live_server(db_url: str, data_dir: Path, *, worker: bool = True, **env: str) -> LiveServer:
    """Migrate, create users, then run ``cocoa serve`` on a loopback port."""
    from cocoa import auth
    from cocoa.db.migrate import upgrade

    upgrade(db_url)
    engine = make_engine(db_url)
    auth.create_user(engine, "admin", "admin-password", auth.Role.ADMIN)
    auth.create_user(engine, "viewer", "viewer-password", auth.Role.VIEWER)
    admin_token, _ = auth.create_token(engine, "admin", "tests")
    viewer_token, _ = auth.create_token(engine, "viewer", "tests")
    engine.dispose()
    port = free_port()
    log_path = data_dir / f"serve-{port}.log"
    args = [sys.executable, "-m", "cocoa.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if not worker:
        args.append("--no-worker")
    process = subprocess.Popen(args, env=cocoa_env(db_url, data_dir, **env), cwd=REPO,
                               stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cocoa serve exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # poll with a deadline
    else:
        process.kill()
        raise RuntimeError(f"cocoa serve did not start:\n{log_path.read_text()}")
    return LiveServer(url, db_url, admin_token, viewer_token, process, log_path)


def stop_live_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


def serving(db_url: str, data_dir: Path, *, worker: bool = True, **env: str) -> Iterator[LiveServer]:
    """A live server for the length of a fixture (``yield from serving(...)``),
    stopped however the test ends."""
    server = start_live_server(db_url, data_dir, worker=worker, **env)
    try:
        yield server
    finally:
        stop_live_server(server)


@pytest.fixture
def live_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The real app under Uvicorn on loopback, on each backend, with a worker."""
    server = start_live_server(db_url, tmp_path)
    yield server
    stop_live_server(server)


@pytest.fixture
def sqlite_live_server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_live_server(sqlite_url, tmp_path)
    yield server
    stop_live_server(server)


@contextmanager
def demo_server(db_url: str, data_dir: Path) -> Iterator[Any]:
    """``cocoa serve --no-worker`` holding the demo town, loaded through the
    real engine; ``server.engine`` is open on its database so that a test
    computes its expectations from the data rather than from constants."""
    from rich.console import Console

    from cocoa.config import Settings
    from cocoa.samples.demo import load_demo

    server = start_live_server(db_url, data_dir, worker=False)
    engine = make_engine(db_url)
    try:
        load_demo(JobManager(engine, Settings(database_url=db_url, data_dir=data_dir)), Console(quiet=True))
        server.engine = engine
        yield server
    finally:
        engine.dispose()
        stop_live_server(server)


# --------------------------------------------------------------------------- processes


def proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name: ``[0]``
    the state, ``[1]`` the parent's pid, ``[11]`` and ``[12]`` user and
    system CPU in clock ticks. OSError when the process is gone."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Running, sleeping or stopped: neither gone nor a zombie."""
    try:
        return proc_stat(pid)[0] != "Z"
    except OSError:
        return False


def child_processes(parent: int) -> list[int]:
    """Live children of ``parent``."""
    found = []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            if int(proc_stat(pid)[1]) == parent and alive(pid):
                found.append(pid)
        except (OSError, ValueError):
            continue
    return found


def helper_processes(parent: int) -> list[int]:
    """Live helper processes of the worker ``parent`` (a parse-ahead helper):
    the children of its helper server (:mod:`cocoa.jobs.forkserver`), which is
    the worker's child running multiprocessing's fork server."""
    return [pid for server in child_processes(parent) if b"forkserver" in _cmdline(server)
            for pid in child_processes(server)]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmd:
            return cmd.read()
    except OSError:
        return b""
