"""Real ``cocoa worker`` processes: SIGKILL, SIGSTOP/SIGCONT, SIGTERM and
several workers sharing PostgreSQL. Effects are checked in the database:
every noop item is one row, so duplicates and losses are visible."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import REPO, cocoa_env, migrated_manager, proc_stat
from tests.polling import wait_for

from cocoa.config import Settings
from cocoa.db.driver import POSTGRES
from cocoa.db.engine import make_engine
from cocoa.db.migrate import upgrade
from cocoa.db.tables import jobs, noop_items
from cocoa.jobs.manager import JobManager
from cocoa.jobs.model import Job, Status

pytestmark = pytest.mark.slow


class Workers:
    """Starts and signals real worker processes against one database."""

    def __init__(self, db_url: str, data_dir: Path) -> None:
        self.db_url = db_url
        self.data_dir = data_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        log = (self.data_dir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "cocoa.cli.main", "worker"], cwd=REPO,
                                env=cocoa_env(self.db_url, self.data_dir, **env), stdout=log,
                                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def run_to_end(self, manager: JobManager, job_id: str, what: str, **env: str) -> Job:
        """Start one more worker and return the job once it has ended (the
        crash tests' last, clean run); the caller's ``finally`` stops them all."""
        self.start(**env)
        wait_for(lambda: manager.get(job_id).is_terminal, what=what)
        return manager.get(job_id)

    def log(self, index: int) -> str:
        return (self.data_dir / f"worker-{index}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()


@pytest.fixture
def database(db_url: str) -> Iterator[JobManager]:
    upgrade(db_url)
    engine = make_engine(db_url)
    yield JobManager(engine, Settings())
    engine.dispose()


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(db_url, tmp_path)
    yield group
    group.stop_all()


def freeze_between_transactions(proc: subprocess.Popen[bytes], manager: JobManager, job_id: str) -> None:
    """SIGSTOP ``proc`` at a moment when it holds no lock on the job.

    A process frozen *inside* a write transaction keeps its locks: on SQLite
    that blocks every writer of the file, on PostgreSQL the job's row until
    ``idle_in_transaction_session_timeout``. No lease can fence that, so the
    test freezes the worker between transactions - the case leases are for -
    and retries when the signal lands mid-commit (a few ms out of every 200)."""
    for _ in range(100):
        proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: _process_state(proc.pid) == "T", timeout=5, what="worker stopped")
        if _job_row_writable(manager, job_id):
            return
        proc.send_signal(signal.SIGCONT)
        wait_for(lambda: _process_state(proc.pid) != "T", timeout=5, what="worker resumed")
    raise AssertionError("the worker was inside a transaction at every one of 100 freezes")


def _process_state(pid: int) -> str:
    return proc_stat(pid)[0]


def _job_row_writable(manager: JobManager, job_id: str) -> bool:
    """Whether the job's row can be locked for writing within half a second."""
    postgres = manager.driver is POSTGRES
    engine = sa.create_engine(manager.engine.url, poolclass=sa.pool.NullPool,
                              connect_args={} if postgres else {"timeout": 0.5})
    try:
        with engine.connect() as conn:
            if postgres:
                conn.exec_driver_sql("SET lock_timeout = '500ms'")
                conn.execute(sa.select(jobs.c.id).where(jobs.c.id == job_id).with_for_update())
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.rollback()
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def items_of(manager: JobManager, job_id: str) -> list[int]:
    with manager.engine.connect() as conn:
        return sorted(conn.execute(sa.select(noop_items.c.item).where(noop_items.c.job_id == job_id)).scalars())


def assert_exactly_once(manager: JobManager, job: Job) -> None:
    assert job.status is Status.COMPLETED, job.error
    assert items_of(manager, job.id) == list(range(job.params["items"])), "an item was lost or done twice"
    assert job.processed == job.params["items"] == job.result["items"]


def test_sigkill_at_several_points_resumes_from_checkpoint(database: JobManager, workers: Workers) -> None:
    """Kill the worker before the first batch, inside batches, and right after
    a commit; each replacement resumes; the result equals a clean run."""
    job = database.create("noop", {"items": 120, "delay_ms": 10, "batch_size": 10}, created_by="t")
    kill_points = [0, 15, 47, 80]  # processed counts at which we pull the plug
    attempts = []
    for point in kill_points:
        proc = workers.start()
        wait_for(lambda p=point: database.get(job.id).status is Status.PROCESSING  # type: ignore[misc]
                 and database.get(job.id).processed >= p, what=f"processed >= {point}")
        attempts.append(database.get(job.id).attempt)
        proc.kill()  # SIGKILL: no cleanup at all, usually mid-batch (10 items x 10 ms)
        proc.wait()
    workers.start()
    wait_for(lambda: database.get(job.id).is_terminal, what="completion after crashes")
    final = database.get(job.id)
    assert_exactly_once(database, final)
    assert final.attempt == len(kill_points) + 1 and attempts == sorted(attempts)
    assert final.crash_count == len(kill_points)


def test_frozen_worker_cannot_overwrite_the_rescued_job(database: JobManager, workers: Workers) -> None:
    """SIGSTOP a worker past its lease, let another take the job over, then
    SIGCONT: the first worker's late commit must be fenced out."""
    job = database.create("noop", {"items": 60, "delay_ms": 20, "batch_size": 10}, created_by="t")
    frozen = workers.start()
    wait_for(lambda: database.get(job.id).processed >= 10, what="first batch")
    freeze_between_transactions(frozen, database, job.id)
    first_attempt = database.get(job.id).attempt
    rescuer = workers.start()
    wait_for(lambda: database.get(job.id).attempt > first_attempt, what="rescue claim")
    wait_for(lambda: database.get(job.id).processed >= 30, what="rescuer progress")
    frozen.send_signal(signal.SIGCONT)
    wait_for(lambda: database.get(job.id).is_terminal, what="completion")
    final = database.get(job.id)
    assert_exactly_once(database, final)
    assert final.lease_owner is None and final.attempt == first_attempt + 1
    wait_for(lambda: "lease lost" in workers.log(0), timeout=20, what="frozen worker noticing")
    assert frozen.poll() is None and rescuer.poll() is None  # both workers survive


def test_sigterm_finishes_the_batch_releases_and_exits_zero(database: JobManager, workers: Workers) -> None:
    job = database.create("noop", {"items": 100, "delay_ms": 20, "batch_size": 10}, created_by="t")
    proc = workers.start()
    wait_for(lambda: database.get(job.id).processed >= 10, what="first batch")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    stopped = database.get(job.id)
    assert stopped.status is Status.PENDING and stopped.lease_owner is None
    assert stopped.processed % 10 == 0 and 10 <= stopped.processed < 100  # a batch boundary
    assert items_of(database, job.id) == list(range(stopped.processed))
    log = workers.log(0)
    assert "released at a batch boundary" in log and "SIGTERM received" in log
    workers.start()
    wait_for(lambda: database.get(job.id).is_terminal, what="resume after restart")
    resumed = database.get(job.id)
    assert_exactly_once(database, resumed)
    assert resumed.crash_count == 0


def test_poison_job_fails_after_repeated_crashes(database: JobManager, workers: Workers) -> None:
    job = database.create("noop", {"items": 1000, "delay_ms": 20, "batch_size": 5}, created_by="t")
    for attempt in (1, 2):
        proc = workers.start(COCOA_POISON_LIMIT="2")
        wait_for(lambda a=attempt: database.get(job.id).attempt == a  # type: ignore[misc]
                 and database.get(job.id).status is Status.PROCESSING, what=f"attempt {attempt}")
        proc.kill()
        proc.wait()
    workers.start(COCOA_POISON_LIMIT="2")
    wait_for(lambda: database.get(job.id).is_terminal, what="poison failure")
    final = database.get(job.id)
    assert final.status is Status.FAILED and final.error and "Poison" in final.error


def test_worker_fails_job_that_exceeds_its_timeout(database: JobManager, workers: Workers) -> None:
    job = database.create("noop", {"items": 1000, "delay_ms": 20, "batch_size": 5}, created_by="t")
    with database.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job.id).values(timeout_seconds=1.0))
    proc = workers.start()
    wait_for(lambda: database.get(job.id).is_terminal, what="timeout")
    final = database.get(job.id)
    assert final.status is Status.FAILED and final.error and "Timed out" in final.error
    assert 0 < final.processed < 1000
    assert items_of(database, job.id) == list(range(final.processed))
    assert proc.poll() is None  # the worker lives on


@pytest.mark.postgres
def test_four_workers_never_run_two_jobs_of_one_type(pg_url: str, tmp_path: Path) -> None:
    manager = migrated_manager(pg_url)
    group = Workers(pg_url, tmp_path)
    created = [manager.create(t, {"items": 20, "delay_ms": 1, "batch_size": 5}, created_by="t").id
               for _ in range(15) for t in ("noop", "noop_other")]
    violations: list[dict[str, int]] = []
    samples = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal samples
        with manager.engine.connect() as conn:
            while not done.is_set():
                rows = conn.execute(sa.select(jobs.c.type, sa.func.count()).where(jobs.c.status == "processing")
                                    .group_by(jobs.c.type)).all()
                conn.rollback()
                samples += 1
                if any(n > 1 for _, n in rows):
                    violations.append(dict(rows))  # type: ignore[arg-type]

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for _ in range(4):
            group.start()
        wait_for(lambda: all(manager.get(i).is_terminal for i in created), timeout=120, what="all jobs done")
    finally:
        done.set()
        sampler.join()
        group.stop_all()
    assert violations == [] and samples > 20
    for job_id in created:
        job = manager.get(job_id)
        assert_exactly_once(manager, job)
        assert job.attempt == 1
    owners = {line.split()[3] for i in range(4) for line in group.log(i).splitlines() if " started (attempt" in line}
    assert len(owners) >= 1
    manager.engine.dispose()


def test_signals_are_real(tmp_path: Path) -> None:
    """Guard: the platform must deliver SIGSTOP/SIGCONT for the tests above."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        os.kill(proc.pid, signal.SIGSTOP)

        wait_for(lambda: _process_state(proc.pid) == "T", timeout=10, what="stopped state")
    finally:
        proc.kill()
        proc.wait()
