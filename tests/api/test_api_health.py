"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from api_helpers import assert_error, create_noop, manager_for, wait_status
from fastapi.testclient import TestClient

from cocoa.api.app import create_app
from cocoa.config import Settings


def test_health_and_readiness_are_public(module_server: Any) -> None:
    with httpx.Client(base_url=module_server.url) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/readyz").json()["status"] == "ready"


def test_readyz_is_503_when_the_schema_is_not_current(tmp_path: Path) -> None:
    """An empty (unmigrated) database: the process is alive but not ready."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", data_dir=tmp_path))
    client = TestClient(app)  # no lifespan: it would refuse to start on this database
    assert client.get("/healthz").status_code == 200
    error = assert_error(client.get("/readyz"), 503, "schema_not_current")
    assert "cocoa db upgrade" in error["message"]


def test_metrics_need_a_token(module_server: Any) -> None:
    with httpx.Client(base_url=module_server.url) as anonymous:
        assert_error(anonymous.get("/metrics"), 401)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format."""
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_metrics_report_jobs_items_errors_and_timings(live_server: Any, tmp_path: Path) -> None:
    manager = manager_for(live_server, tmp_path)
    done = create_noop(manager, items=9, error_every=3)
    failed = create_noop(manager, items=5, fail_at=0)
    manager.engine.dispose()
    with live_server.client(live_server.viewer_token) as client:
        wait_status(client, done.id, "completed")
        wait_status(client, failed.id, "failed")
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, "cocoa_jobs", type="noop", status="completed") == 1
    assert sample(text, "cocoa_jobs", type="noop", status="failed") == 1
    assert sample(text, "cocoa_job_items_processed_total", type="noop") == 9
    assert sample(text, "cocoa_job_item_errors_total", type="noop") == 3
    assert sample(text, "cocoa_job_duration_seconds_count", type="noop") == 1  # completed only
    assert sample(text, "cocoa_job_duration_seconds_bucket", type="noop", le="+Inf") == 1
    assert sample(text, "cocoa_job_queue_wait_seconds_count", type="noop") == 2
    wait = sample(text, "cocoa_job_queue_wait_seconds_sum", type="noop")
    assert 0 <= wait < 60
    assert sample(text, "cocoa_job_queue_wait_seconds_bucket", type="noop", le="3600") == 2
