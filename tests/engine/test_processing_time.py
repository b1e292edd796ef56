"""Processing time is banked in the jobs row at every batch commit (issue 21).

``jobs.processing_seconds`` holds the processing time up to the last commit
(``run_started_at`` restarts the count), so a reader of the row, the time
limit and the job object's ``processing_seconds`` agree, and time paused is
never added. Time passing is simulated by moving ``run_started_at`` back,
not by sleeping.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.db.tables import jobs
from cocoa.jobs.manager import JobManager, Lease
from cocoa.jobs.model import Job, Status, utcnow
from cocoa.jobs.types import Batch


def _backdate_run(manager: JobManager, job_id: str, seconds: float) -> None:
    """As if the current run had started ``seconds`` ago."""
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id)
                     .values(run_started_at=utcnow() - timedelta(seconds=seconds)))


def _commit(manager: JobManager, lease: Lease, batch: Batch) -> Job:
    return manager.commit_batch(lease, batch, rate=None, current=manager.get(lease.job_id))


def test_each_commit_banks_the_run_so_far_and_a_pause_stops_the_count(db_engine: sa.Engine) -> None:
    manager = JobManager(db_engine, Settings(batch_size=10, lease_seconds=30))
    job_id = manager.create("noop", {"items": 30}, created_by="tester").id
    claimed = manager.claim("w1")
    assert claimed is not None and claimed.id == job_id
    lease = Lease(job_id, "w1", claimed.attempt)

    _backdate_run(manager, job_id, 5)
    first = _commit(manager, lease, Batch(checkpoint={"next": 10}, processed=10, succeeded=10))
    row = manager.get(job_id)
    assert 5 <= row.processing_seconds < 6 and row.status is Status.PROCESSING
    assert row.run_started_at is not None and utcnow() - row.run_started_at < timedelta(seconds=1)
    assert first.processing_seconds == row.processing_seconds and first.run_started_at == row.run_started_at

    _backdate_run(manager, job_id, 2)
    manager.control(job_id, "pause")
    _commit(manager, lease, Batch(checkpoint={"next": 20}, processed=10, succeeded=10))
    paused = manager.get(job_id)
    assert paused.status is Status.PAUSED and 7 <= paused.processing_seconds < 8
    later = utcnow() + timedelta(hours=1)  # an hour paused adds nothing
    assert paused.processing_seconds_now(later) == round(paused.processing_seconds, 3)
    elapsed = paused.elapsed_seconds(later)
    assert elapsed is not None and elapsed > 3600
