"""A job group under real worker processes killed with SIGKILL in different
children: after resuming, the database equals one clean job over the whole
file, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import migrated_manager
from tests.process.test_job_types_crash import voter_snapshot
from tests.process.test_worker_processes import Workers, wait_for

from cocoa.config import Settings
from cocoa.jobs.manager import JobManager, UploadSource
from cocoa.jobs.model import Status
from cocoa.samples.voters import generate

pytestmark = pytest.mark.slow
ENV = {"COCOA_VOTER_BATCH_SIZE": "100", "COCOA_PARSE_AHEAD_MIN_ROWS": "1000000",
       "COCOA_MAX_ITEMS_PER_JOB": "500"}


@pytest.fixture
def manager(db_url: str) -> Iterator[JobManager]:
    base = migrated_manager(db_url)
    m = JobManager(base.engine, Settings(max_items_per_job=500))  # creates groups of 500 rows
    yield m
    m.dispose()
    base.dispose()


def import_once(manager: JobManager, data: bytes) -> str:
    return manager.create("import_voters", {"format": "auto", "mode": "full"}, created_by="t",
                          upload=UploadSource(io.BytesIO(data), "voters.txt", None)).id


def test_group_killed_in_two_children_equals_one_clean_job(manager: JobManager, db_url: str,
                                                           tmp_path: Path) -> None:
    generated = generate("nc_statewide", 2200, seed=11)
    group_id = import_once(manager, generated.data)
    assert manager.get(group_id).kind == "group"
    workers = Workers(db_url, tmp_path)
    try:
        for point in (700, 1600):  # inside the second and the fourth child
            proc = workers.start(**ENV)
            wait_for(lambda p=point: manager.get(group_id).processed >= p, what=f"{point} rows")  # type: ignore[misc]
            proc.kill()
            proc.wait()
        group = workers.run_to_end(manager, group_id, "group completion", **ENV)
    finally:
        workers.stop_all()
    assert group.status is Status.COMPLETED, group.error
    assert group.processed == group.total == generated.rows
    kids = manager.children([group_id])[group_id]
    assert len(kids) == 5 and all(k.status is Status.COMPLETED for k in kids)
    assert sum(k.attempt for k in kids) >= 7  # two children ran twice

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    clean = migrated_manager(clean_url)
    (tmp_path / "clean").mkdir()
    clean_workers = Workers(clean_url, tmp_path / "clean")
    try:
        clean_id = import_once(clean, generated.data)  # default limit: one job
        one = clean_workers.run_to_end(clean, clean_id, "clean import", COCOA_VOTER_BATCH_SIZE="100")
    finally:
        clean_workers.stop_all()
    assert one.kind == "job" and one.status is Status.COMPLETED
    assert voter_snapshot(manager.engine) == voter_snapshot(clean.engine)
    for counter in ("voters_created", "households_created", "rows_read", "rows_superseded"):
        assert group.result[counter] == one.result[counter], counter
    assert group.error_count == one.error_count
    clean.dispose()
