"""``elapsed_seconds`` vs ``processing_seconds`` in the job object (issue 21).

A job paused for a while must show that time in ``elapsed_seconds`` (wall
clock) and not in ``processing_seconds`` (what the worker spent), and
``duration_seconds`` stays the deprecated alias of the first.
"""

from __future__ import annotations

from dataclasses import MISSING, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api_helpers import create_noop, job_status, manager_for, wait_for, wait_status

from cocoa.api.job_objects import public_dict
from cocoa.jobs.model import Job, Status

PAUSED_AT_LEAST = 1.0


def test_paused_time_counts_in_elapsed_but_not_in_processing(module_server: Any, tmp_path: Path) -> None:
    manager = manager_for(module_server, tmp_path)
    job = create_noop(manager, items=40, delay_ms=20, batch_size=5)
    manager.engine.dispose()
    with module_server.client() as client:
        wait_for(lambda: job_status(client, job.id)["progress"]["processed"] >= 5, 30, "a first batch")
        assert client.post(f"/api/v1/jobs/{job.id}/pause").status_code == 200
        paused = wait_status(client, job.id, "paused")
        frozen = paused["processing_seconds"]
        assert frozen > 0
        # While paused, the wall clock runs on and the processing time stands still.
        waited = wait_for(lambda: (lambda j: j if j["elapsed_seconds"] - frozen >= PAUSED_AT_LEAST else None)(
            job_status(client, job.id)), 30, "time to pass while paused")
        assert waited["processing_seconds"] == frozen
        assert client.post(f"/api/v1/jobs/{job.id}/resume").status_code == 200
        done = wait_status(client, job.id, "completed")
    assert done["processing_seconds"] > frozen  # the second run added its time
    assert done["elapsed_seconds"] - done["processing_seconds"] >= PAUSED_AT_LEAST
    assert done["duration_seconds"] == done["elapsed_seconds"]


def _job(**changes: Any) -> Job:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    known = dict(
        id="j", type="noop", status=Status.PENDING, request={}, params={}, result={}, checkpoint=None,
        error=None, phase=None, total=None, processed=0, batch_progress=0, succeeded=0, failed=0,
        error_count=0, rate_per_second=None, attempt=0, crash_count=0, lease_owner=None,
        lease_expires_at=None, control=None, timeout_seconds=60.0, processing_seconds=0.0, upload_id=None,
        retry_of=None, created_by=None, created_at=start, started_at=None, run_started_at=None,
        completed_at=None, updated_at=start, archived_at=None,
    )
    # Columns added since (job groups and the like) do not matter here: None.
    extra = {f.name: None for f in fields(Job)
             if f.init and f.name not in known and f.default is MISSING and f.default_factory is MISSING}
    return replace(Job(**known, **extra), **changes)


def test_processing_time_adds_only_the_run_going_on() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    now = start + timedelta(seconds=100)
    assert _job().elapsed_seconds(now) is None and _job().processing_seconds_now(now) == 0.0
    # Paused after 3 s of work: run_started_at is left from the last run and must not count.
    paused = _job(status=Status.PAUSED, started_at=start, run_started_at=start, processing_seconds=3.0)
    assert (paused.elapsed_seconds(now), paused.processing_seconds_now(now)) == (100.0, 3.0)
    running = replace(paused, status=Status.PROCESSING, run_started_at=now - timedelta(seconds=2))
    assert (running.elapsed_seconds(now), running.processing_seconds_now(now)) == (100.0, 5.0)
    done = replace(paused, status=Status.COMPLETED, completed_at=start + timedelta(seconds=40))
    assert (done.elapsed_seconds(now), done.processing_seconds_now(now)) == (40.0, 3.0)
    shown = public_dict(done)
    assert (shown["elapsed_seconds"], shown["duration_seconds"], shown["processing_seconds"]) == (40.0, 40.0, 3.0)
