"""Fixtures for the HTTP API tests: live servers per backend and managers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
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
    yield from root.serving(db_url, tmp_path, worker=False)


@pytest.fixture
def idle_manager(idle_server: Any, tmp_path: Path) -> Iterator[JobManager]:
    mgr = manager_for(idle_server, tmp_path)
    yield mgr
    mgr.engine.dispose()


@pytest.fixture
def small_upload_server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """A server whose upload limit is 4 KiB, to exercise both 413 paths cheaply."""
    yield from root.serving(db_url, tmp_path, COCOA_MAX_UPLOAD_BYTES=str(SMALL_UPLOAD_LIMIT))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One live server (with worker) per backend shared by a module's tests,
    for tests that only look at jobs they created themselves."""
    data_dir = tmp_path_factory.mktemp("module_server")
    with root.module_database(request.param, data_dir) as url:
        server = root.start_live_server(url, data_dir)
        try:
            yield server
        finally:
            root.stop_live_server(server)

