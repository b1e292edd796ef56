"""A database error is an outage, not a bug in the job - also when a job
type talks to the driver directly and gets the driver's own exception.

The chaos test restarts PostgreSQL under running jobs; the voter import
writes with ``COPY`` on the raw psycopg connection, so a restart at that
moment raises ``psycopg.OperationalError`` unwrapped by SQLAlchemy. The
worker must abandon the run (the job resumes after its lease expires), not
fail the job as "Internal error". Runs on both backends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg
import pytest
import sqlalchemy as sa
from tests.engine.test_engine_contract import item_rows, wait_for

from cocoa.config import Settings
from cocoa.db.tables import noop_items
from cocoa.jobs.manager import JobManager
from cocoa.jobs.model import Status
from cocoa.jobs.types import Batch, Checkpoint, CreateContext, Params, RunContext, register
from cocoa.jobs.worker import Worker, database_unavailable

ITEMS = 4


class DriverErrorOnce:
    """One item per batch; the write of item 1 fails once with a raw driver error."""

    name: ClassVar[str] = "test_driver_error_once"
    needs_upload: ClassVar[bool] = False
    hidden: ClassVar[bool] = True
    batch_size_setting: ClassVar[str] = "batch_size"
    uses_helpers: ClassVar[bool] = False
    failed: ClassVar[set[str]] = set()  # jobs whose error was already raised

    def validate(self, ctx: CreateContext) -> Params:
        return {}

    def plan(self, ctx: RunContext) -> int:
        return ITEMS

    def run_batch(self, ctx: RunContext, checkpoint: Checkpoint | None) -> Batch:
        item = int((checkpoint or {}).get("next", 0))
        job_id = ctx.job_id

        def write(conn: sa.Connection) -> None:
            conn.execute(noop_items.insert().values(job_id=job_id, item=item))
            if item == 1 and job_id not in self.failed:
                self.failed.add(job_id)
                raise psycopg.OperationalError("server closed the connection unexpectedly")

        return Batch(checkpoint={"next": item + 1}, processed=1, succeeded=1,
                     done=item + 1 >= ITEMS, write=write)


register(DriverErrorOnce())


@pytest.fixture
def manager(db_engine: sa.Engine) -> Iterator[JobManager]:
    settings = Settings(poll_seconds=0.05, heartbeat_seconds=0.2, lease_seconds=1,
                        reaper_seconds=0.2, poison_limit=3)
    yield JobManager(db_engine, settings)


def test_raw_driver_error_abandons_the_run_and_the_job_resumes(manager: JobManager) -> None:
    job = manager.create(DriverErrorOnce.name, {}, created_by="tester")
    worker = Worker(manager, worker_id="inproc")
    thread: threading.Thread = worker.start_in_thread()
    try:
        wait_for(lambda: manager.get(job.id).is_terminal)
    finally:
        worker.stop()
        thread.join(timeout=30)
    final = manager.get(job.id)
    assert final.status is Status.COMPLETED, final.error
    assert final.crash_count == 1 and final.attempt == 2  # abandoned once, resumed by the lease
    assert item_rows(manager, job.id) == list(range(ITEMS))  # the failed batch rolled back whole


@pytest.mark.parametrize(("exc", "outage"), [
    (psycopg.OperationalError("gone"), True),
    (psycopg.InterfaceError("connection closed"), True),
    (sa.exc.OperationalError("SELECT 1", {}, Exception("gone")), True),
    (psycopg.errors.UniqueViolation("duplicate key"), False),
    (ValueError("a bug"), False),
])
def test_what_counts_as_the_database_going_away(exc: Any, outage: bool) -> None:
    assert database_unavailable(exc) is outage
