"""``POST /jobs/{id}/cancel|pause|resume|retry``: happy paths and 409s."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from api_helpers import assert_error, create_noop, manager_for, wait_for, wait_status

from cocoa.jobs.manager import JobManager


def test_pending_job_pause_resume_cancel(idle_server: Any, idle_manager: JobManager) -> None:
    job = create_noop(idle_manager, items=3)
    url = f"/api/v1/jobs/{job.id}"
    with idle_server.client() as client:
        paused = client.post(f"{url}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        assert_error(client.post(f"{url}/pause"), 409, "illegal_transition")
        resumed = client.post(f"{url}/resume")
        assert resumed.status_code == 200 and resumed.json()["status"] == "pending"
        error = assert_error(client.post(f"{url}/resume"), 409, "illegal_transition")
        assert "only paused jobs" in error["message"]
        cancelled = client.post(f"{url}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["completed_at"]
        for action in ("cancel", "pause", "resume"):
            assert_error(client.post(f"{url}/{action}"), 409, "illegal_transition")
        assert client.get(url).json()["status"] == "cancelled"


def test_retry_creates_a_linked_job(idle_server: Any, idle_manager: JobManager) -> None:
    job = create_noop(idle_manager, items=3, delay_ms=1)
    with idle_server.client() as client:
        error = assert_error(client.post(f"/api/v1/jobs/{job.id}/retry"), 409, "illegal_transition")
        assert "only failed or cancelled" in error["message"]
        client.post(f"/api/v1/jobs/{job.id}/cancel")
        retried = client.post(f"/api/v1/jobs/{job.id}/retry")
        assert retried.status_code == 202, retried.text
        body = retried.json()  # JobAccepted, like every job-creating endpoint
        new = body["job"]
        assert body["job_id"] == new["id"] and body["status"] == "pending"
        assert retried.headers["location"] == f"/api/v1/jobs/{new['id']}"
        assert new["id"] != job.id and new["retry_of"] == job.id and new["status"] == "pending"
        assert new["params"] == job.params and new["created_by"] == "admin"
        assert client.get(retried.headers["location"]).json()["id"] == new["id"]


def test_unknown_job_is_404_for_every_action(module_server: Any) -> None:
    with module_server.client() as client:
        for action in ("cancel", "pause", "resume", "retry"):
            assert_error(client.post(f"/api/v1/jobs/{uuid.uuid4()}/{action}"), 404, "job_not_found")


def test_running_job_pause_resume_then_cancel(live_server: Any, tmp_path: Path) -> None:
    """Requests on a processing job take effect at the next batch boundary."""
    manager = manager_for(live_server, tmp_path)
    job = create_noop(manager, items=2000, delay_ms=2, batch_size=10)
    url = f"/api/v1/jobs/{job.id}"
    with live_server.client() as client:
        wait_for(lambda: client.get(url).json()["progress"]["processed"] > 0, what="job to make progress")
        asked = client.post(f"{url}/pause").json()
        assert asked["status"] in {"processing", "paused"}
        paused = wait_status(client, job.id, "paused")
        assert paused["requested_action"] is None and paused["progress"]["processed"] < 2000
        assert client.post(f"{url}/resume").json()["status"] == "pending"
        wait_for(lambda: client.get(url).json()["progress"]["processed"] > paused["progress"]["processed"],
                 what="job to continue after resume")
        cancel = client.post(f"{url}/cancel")
        assert cancel.status_code == 200
        assert cancel.json()["status"] == "cancelled" or cancel.json()["requested_action"] == "cancel"
        final = wait_status(client, job.id, "cancelled")
        assert final["progress"]["processed"] < 2000 and final["completed_at"]
        assert_error(client.post(f"{url}/cancel"), 409, "illegal_transition")
    manager.engine.dispose()


def test_failed_job_can_be_retried(module_server: Any, tmp_path: Path) -> None:
    manager = manager_for(module_server, tmp_path)
    job = create_noop(manager, items=5, fail_at=2)
    manager.engine.dispose()
    with module_server.client() as client:
        failed = wait_status(client, job.id, "failed")
        assert "fail at item 2" in failed["error"]
        retried = client.post(f"/api/v1/jobs/{job.id}/retry")
        body = retried.json()  # the one 202 shape of every job-creating endpoint
        assert retried.status_code == 202 and body["job"]["retry_of"] == job.id
        assert set(body) == {"job_id", "status", "job"} and body["status"] == "pending"
        assert retried.headers["location"] == f"/api/v1/jobs/{body['job_id']}" != f"/api/v1/jobs/{job.id}"
        assert wait_status(client, body["job_id"], "failed")["attempt"] >= 1
