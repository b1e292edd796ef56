"""Real job types under real worker processes killed with SIGKILL: after
resuming, the database equals a clean run's, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import alive, helper_processes, migrated_manager
from tests.process.test_worker_processes import Workers, wait_for

from cocoa.db.tables import households, voters
from cocoa.jobs.manager import JobManager, UploadSource
from cocoa.jobs.model import Status
from cocoa.samples.voters import generate

pytestmark = pytest.mark.slow


def voter_snapshot(engine: sa.Engine) -> list[Any]:
    """Voters and households without ids and timestamps."""
    with engine.connect() as conn:
        homes = {row.id: (row.address_key, row.voter_count) for row in conn.execute(sa.select(households))}
        skip = {"id", "created_at", "updated_at", "household_id", "import_job_id"}
        people = sorted(
            (json.dumps({k: v for k, v in row._mapping.items() if k not in skip}, sort_keys=True, default=str),
             homes.get(row.household_id))
            for row in conn.execute(sa.select(voters))
        )
    return [sorted(homes.values()), people]


def import_once(manager: JobManager, data: bytes) -> str:
    return manager.create("import_voters", {"format": "auto", "mode": "full"}, created_by="t",
                          upload=UploadSource(io.BytesIO(data), "voters.txt", None)).id


@pytest.fixture
def manager(db_url: str) -> Iterator[JobManager]:
    m = migrated_manager(db_url)
    yield m
    m.dispose()


@pytest.mark.parametrize("parse_ahead_min_rows", ["0", "1000000"], ids=["helper", "in-worker"])
def test_voter_import_killed_mid_batch_equals_clean_run(manager: JobManager, db_url: str,
                                                        tmp_path: Path,
                                                        parse_ahead_min_rows: str) -> None:
    """With a helper process parsing ahead too: it dies with its worker."""
    generated = generate("nc_statewide", 3000, seed=7)
    job_id = import_once(manager, generated.data)
    group = Workers(db_url, tmp_path)
    env = {"COCOA_VOTER_BATCH_SIZE": "100", "COCOA_PARSE_AHEAD_MIN_ROWS": parse_ahead_min_rows}
    try:
        for point in (400, 1500):
            proc = group.start(**env)
            wait_for(lambda p=point: manager.get(job_id).processed >= p, what=f"{point} rows")  # type: ignore[misc]
            helpers = helper_processes(proc.pid)
            expected = 1 if parse_ahead_min_rows == "0" else 0
            # Far from the end a helper is certainly running; near it, it may
            # already have been closed after handing over the last batch.
            assert len(helpers) == expected if point == 400 else len(helpers) <= expected
            proc.kill()
            proc.wait()
            wait_for(lambda h=helpers: not any(map(alive, h)), what="the helper to exit")  # type: ignore[misc]
        job = group.run_to_end(manager, job_id, "import completion", **env)
    finally:
        group.stop_all()
    assert job.status is Status.COMPLETED, job.error
    assert job.attempt == 3 and job.processed == job.total

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    clean = migrated_manager(clean_url)
    clean_group = Workers(clean_url, tmp_path / "clean")
    (tmp_path / "clean").mkdir()
    try:
        clean_id = import_once(clean, generated.data)
        clean_job = clean_group.run_to_end(clean, clean_id, "clean import", COCOA_VOTER_BATCH_SIZE="100")
    finally:
        clean_group.stop_all()
    assert clean_job.status is Status.COMPLETED
    assert voter_snapshot(manager.engine) == voter_snapshot(clean.engine)
    for counter in ("voters_created", "households_created", "rows_read"):
        assert job.result[counter] == clean_job.result[counter], counter
    assert job.error_count == clean_job.error_count
    clean.dispose()
