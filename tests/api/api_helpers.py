"""Helpers shared by the HTTP API tests (imported as ``api_helpers``).

The live-server helpers live in ``tests/conftest.py``; pytest imports every
``conftest.py`` under the module name ``conftest``, so this module loads the
root one by path under its own name instead of ``import conftest``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import httpx
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)
from tests.polling import wait_for

from cocoa.config import Settings
from cocoa.db.engine import make_engine
from cocoa.jobs.manager import JobManager
from cocoa.jobs.model import Job

LiveServer = root.LiveServer
T = TypeVar("T")


def manager_for(server: Any, tmp_path: Path) -> JobManager:
    """A JobManager on the server's database (noop jobs have no public endpoint)."""
    return JobManager(make_engine(server.db_url), Settings(database_url=server.db_url, data_dir=tmp_path))


def create_noop(manager: JobManager, **params: Any) -> Job:
    return manager.create("noop", params, created_by="admin")


def job_status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_status(client: httpx.Client, job_id: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = job_status(client, job_id)
        return job if job["status"] in statuses else None

    return wait_for(check, timeout, f"job {job_id} to reach {statuses}")


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape, with the expected status (and code)."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error


SMALL_UPLOAD_LIMIT = 4096
