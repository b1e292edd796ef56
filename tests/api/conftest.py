"""Fixtures for the HTTP API tests: live servers per backend and managers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_helpers import SMALL_UPLOAD_LIMIT, manager_for, root

from cocoa.jobs.manager import JobManager


@pytest.fixture
def manager(live_server: Any, tmp_path: Path) -> Iterator[JobManager]:
    mgr = manager_for(live_server, tmp_path)
    yield mgr
    mgr.engine.dispose()


@pytest.fixture
def idle_server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """The real app without a worker: jobs stay exactly where a test puts them."""
    server = root.start_live_server(db_url, tmp_path, worker=False)
    yield server
    root.stop_live_server(server)


@pytest.fixture
def idle_manager(idle_server: Any, tmp_path: Path) -> Iterator[JobManager]:
    mgr = manager_for(idle_server, tmp_path)
    yield mgr
    mgr.engine.dispose()


@pytest.fixture
def small_upload_server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """A server whose upload limit is 4 KiB, to exercise both 413 paths cheaply."""
    server = root.start_live_server(db_url, tmp_path, COCOA_MAX_UPLOAD_BYTES=str(SMALL_UPLOAD_LIMIT))
    yield server
    root.stop_live_server(server)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One live server (with worker) per backend shared by a module's tests,
    for tests that only look at jobs they created themselves."""
    data_dir = tmp_path_factory.mktemp("module_server")
    with _database(request.param, data_dir) as url:
        server = root.start_live_server(url, data_dir)
        try:
            yield server
        finally:
            root.stop_live_server(server)


class _database:
    """A fresh database for a module: a SQLite file, or a PostgreSQL database
    created and dropped like the root ``pg_url`` fixture does per test."""

    def __init__(self, backend: str, data_dir: Path) -> None:
        self.backend = backend
        self.data_dir = data_dir
        self.name = f"cocoa_t_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.data_dir / 'cocoa.db'}"
        root.require_postgres()
        self.admin = sa.create_engine(root.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        return str(sa.make_url(root.PG_ADMIN_URL).set(database=self.name)
                   .render_as_string(hide_password=False))

    def __exit__(self, *exc: object) -> None:
        if self.backend == "sqlite":
            return
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()
