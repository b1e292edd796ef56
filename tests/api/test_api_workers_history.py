"""``GET /api/v1/workers``, ``GET /api/v1/jobs/{id}/history`` and the worker
metrics (issue 19), over real HTTP on both backends."""

from __future__ import annotations

import re
import uuid
from typing import Any

from api_helpers import assert_error, create_noop, wait_for

from cocoa.jobs.manager import JobManager


def test_no_worker_no_live_worker_and_queue_metrics(idle_server: Any, idle_manager: JobManager) -> None:
    """``cocoa serve --no-worker``: nothing registers, and the metrics say the queue waits."""
    job = create_noop(idle_manager, items=3)
    with idle_server.client(idle_server.viewer_token) as client:
        listed = client.get("/api/v1/workers")
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"workers": [], "live": 0}
        metrics = client.get("/metrics").text
    assert re.search(r"^cocoa_workers_live 0\.0$", metrics, re.M), metrics
    assert re.search(r'^cocoa_queue_depth\{type="noop"\} 1\.0$', metrics, re.M), metrics
    age = re.search(r'^cocoa_queue_oldest_pending_age_seconds\{type="noop"\} ([0-9.e+-]+)$', metrics, re.M)
    assert age is not None and 0 <= float(age.group(1)) < 600
    assert job.status.value == "pending"


def test_history_records_the_token_name_and_viewers_can_read_it(
    idle_server: Any, idle_manager: JobManager,
) -> None:
    job = create_noop(idle_manager, items=3)
    with idle_server.client() as admin, idle_server.client(idle_server.viewer_token) as viewer:
        assert admin.post(f"/api/v1/jobs/{job.id}/pause").status_code == 200
        assert_error(viewer.post(f"/api/v1/jobs/{job.id}/resume"), 403, "forbidden")
        assert admin.post(f"/api/v1/jobs/{job.id}/cancel").status_code == 200
        retried = admin.post(f"/api/v1/jobs/{job.id}/retry").json()
        response = viewer.get(f"/api/v1/jobs/{job.id}/history")
        assert response.status_code == 200, response.text
        body = response.json()
        by_prefix = viewer.get(f"/api/v1/jobs/{job.id[:8]}/history")
        new = viewer.get(f"/api/v1/jobs/{retried['job_id']}/history").json()
    assert body["job_id"] == job.id
    assert [(e["event"], e["actor"]) for e in body["events"]] == [
        ("created", "admin"), ("paused", "admin (token tests)"), ("cancelled", "admin (token tests)"),
        ("retried_as", "admin (token tests)")]
    assert body["events"][-1]["detail"] == retried["job_id"]
    assert all(e["at"].endswith("Z") for e in body["events"])
    assert by_prefix.status_code == 200 and by_prefix.json()["job_id"] == job.id
    assert [(e["event"], e["actor"], e["detail"]) for e in new["events"]] == [
        ("created", "admin (token tests)", f"retry of {job.id}")]


def test_history_of_an_unknown_job_is_404(module_server: Any) -> None:
    with module_server.client(module_server.viewer_token) as client:
        assert_error(client.get(f"/api/v1/jobs/{uuid.uuid4()}/history"), 404, "job_not_found")
        assert client.get(f"/api/v1/jobs/{uuid.uuid4()}/history",
                          headers={"Authorization": "Bearer cct_nope"}).status_code == 401


def test_embedded_worker_is_listed_and_counted(module_server: Any) -> None:
    with module_server.client(module_server.viewer_token) as client:
        listed = wait_for(lambda: _live(client), what="the embedded worker to register")
        assert len(listed) == 1
        worker = listed[0]
        assert worker["pid"] > 0 and worker["types"] is None and worker["version"]
        assert worker["id"].startswith(f"{worker['host']}:{worker['pid']}:")
        assert worker["started_at"] <= worker["last_heartbeat"]
        metrics = client.get("/metrics").text
    assert re.search(r"^cocoa_workers_live 1\.0$", metrics, re.M), metrics


def test_cancel_of_a_running_job_names_the_token_then_the_worker(module_server: Any, tmp_path: Any) -> None:
    from api_helpers import manager_for

    manager = manager_for(module_server, tmp_path)
    try:
        job = create_noop(manager, items=2000, delay_ms=2, batch_size=10)
    finally:
        manager.engine.dispose()
    url = f"/api/v1/jobs/{job.id}"
    with module_server.client() as client:
        wait_for(lambda: client.get(url).json()["status"] == "processing" or None, what="the job to start")
        assert client.post(f"{url}/cancel").status_code == 200
        wait_for(lambda: client.get(url).json()["status"] == "cancelled" or None, what="the cancel")
        events = [(e["event"], e["actor"]) for e in client.get(f"{url}/history").json()["events"]]
        worker_id = _live(client)[0]["id"]  # type: ignore[index]
    assert events[0] == ("created", "admin") and ("claimed", worker_id) in events
    assert events[-2:] == [("cancel_requested", "admin (token tests)"), ("cancelled", worker_id)]


def _live(client: Any) -> list[dict[str, Any]] | None:
    workers = [w for w in client.get("/api/v1/workers").json()["workers"] if w["live"]]
    return workers or None


def test_cli_history_locally_and_over_http(idle_server: Any, idle_manager: JobManager, tmp_path: Any) -> None:
    """``cocoa jobs history`` prints the same events from the database and from the server."""
    import json
    import subprocess
    import sys

    from api_helpers import root

    job = create_noop(idle_manager, items=3)
    with idle_server.client() as admin:
        assert admin.post(f"/api/v1/jobs/{job.id}/pause").status_code == 200
    env = root.cocoa_env(idle_server.db_url, tmp_path, HOME=str(tmp_path), COLUMNS="200")

    def cli(*args: str) -> str:
        run = subprocess.run([sys.executable, "-m", "cocoa.cli.main", "jobs", "history", *args],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    local = cli(job.id[:8])
    assert "created by admin" in local and "paused by admin (token tests)" in local
    remote = json.loads(cli(job.id[:8], "--json", "--url", idle_server.url, "--token", idle_server.viewer_token))
    assert remote["job_id"] == job.id
    assert [(e["event"], e["actor"]) for e in remote["events"]] == [
        ("created", "admin"), ("paused", "admin (token tests)")]
