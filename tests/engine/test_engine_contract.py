"""The engine contract: every rule of DESIGN.md "Job lifecycle", run against
SQLite and PostgreSQL alike (the ``db_engine`` fixture is parametrised)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from io import BytesIO
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from tests.polling import wait_for

from cocoa.api.job_objects import JobObjects
from cocoa.config import Settings
from cocoa.db.tables import job_errors, jobs, noop_items, upload_chunks, uploads
from cocoa.jobs.manager import JobManager, JobNotFound, Lease, LeaseLost, UploadSource
from cocoa.jobs.model import IllegalTransition, Job, Status, utcnow
from cocoa.jobs.types import Batch, ItemError, JobValidationError
from cocoa.jobs.uploads import StoredUpload, UploadTooLarge, open_upload
from cocoa.jobs.worker import Worker


@pytest.fixture
def settings() -> Settings:
    return Settings(batch_size=10, poll_seconds=0.05, heartbeat_seconds=0.2, lease_seconds=5,
                    reaper_seconds=0.2, poison_limit=3, max_upload_bytes=1000, upload_chunk_bytes=1024)


@pytest.fixture
def manager(db_engine: sa.Engine, settings: Settings) -> JobManager:
    return JobManager(db_engine, settings)


def noop(manager: JobManager, items: int = 25, type_name: str = "noop", **extra: int) -> str:
    return manager.create(type_name, {"items": items, **extra}, created_by="tester").id


def claim(manager: JobManager, owner: str = "w1") -> tuple[Lease, str]:
    job = manager.claim(owner)
    assert job is not None
    return Lease(job.id, owner, job.attempt), job.type


def set_total(manager: JobManager, lease: Lease, total: int) -> None:
    """What a plan sets (the worker does it with its first heartbeat)."""
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == lease.job_id).values(total=total))


def expire_lease(manager: JobManager, job_id: str) -> None:
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id)
                     .values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def commit(manager: JobManager, lease: Lease, batch: Batch, rate: float | None) -> Job:
    """Commit as a worker does: from the job as it was last committed."""
    return manager.commit_batch(lease, batch, rate=rate, current=manager.get(lease.job_id))


def item_rows(manager: JobManager, job_id: str) -> list[int]:
    with manager.engine.connect() as conn:
        return sorted(conn.execute(sa.select(noop_items.c.item).where(noop_items.c.job_id == job_id)).scalars())


@pytest.fixture
def running_worker(manager: JobManager) -> Iterator[Worker]:
    worker = Worker(manager, worker_id="inproc")
    thread = worker.start_in_thread()
    yield worker
    worker.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


# ------------------------------------------------------------------ creation


def test_create_records_pending_job_with_validated_params(manager: JobManager) -> None:
    job = manager.create("noop", {"items": 7}, created_by="tester")
    assert job.status is Status.PENDING
    assert job.request == {"items": 7}
    assert job.params["items"] == 7 and job.params["delay_ms"] == 0
    assert job.created_by == "tester" and job.attempt == 0 and job.total is None
    assert job.progress()["percent"] == 0.0


def test_invalid_request_creates_nothing(manager: JobManager) -> None:
    with pytest.raises(JobValidationError) as info:
        manager.create("noop", {"items": -1}, created_by="t")
    assert info.value.status == 422 and "items" in info.value.message
    with pytest.raises(JobValidationError, match="Unknown job type"):
        manager.create("nope", {}, created_by="t")
    assert manager.list_jobs(include_hidden=True)[1] == 0


def test_upload_is_stored_in_chunks_and_rolled_back_with_a_failed_creation(manager: JobManager) -> None:
    data = bytes(range(256)) * 3
    job = manager.create("noop", {"items": 1}, created_by="t", upload=UploadSource(BytesIO(data), "../../x.csv", None))
    assert job.upload_id is not None
    reader = open_upload(manager.engine, job.upload_id)
    reader.seek(700)
    assert reader.read(100) == data[700:768]
    reader.seek(0)
    assert reader.read() == data
    with manager.engine.connect() as conn:
        assert conn.execute(sa.select(uploads.c.filename)).scalar_one() == "x.csv"  # display name only
    with pytest.raises(JobValidationError):
        manager.create("noop", {"items": -5}, created_by="t", upload=UploadSource(BytesIO(data), "y", None))
    with pytest.raises(UploadTooLarge):
        manager.create("noop", {"items": 1}, created_by="t", upload=UploadSource(BytesIO(b"x" * 1001), "z", None))
    with manager.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(uploads)).scalar_one() == 1


# ------------------------------------------------------------------ claiming


def test_claim_takes_oldest_first_and_one_per_type(manager: JobManager) -> None:
    first, second = noop(manager), noop(manager)
    other = noop(manager, type_name="noop_other")
    job = manager.claim("w1")
    assert job is not None and job.id == first and job.status is Status.PROCESSING and job.attempt == 1
    next_job = manager.claim("w2")
    assert next_job is not None and next_job.id == other  # noop is busy, noop_other is free
    assert manager.claim("w3") is None
    assert manager.get(second).status is Status.PENDING


def test_database_forbids_two_processing_jobs_of_one_type(manager: JobManager) -> None:
    a, b = noop(manager), noop(manager)
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == a).values(status="processing"))
    with pytest.raises(IntegrityError), manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == b).values(status="processing"))


def test_concurrent_claims_never_start_one_type_twice(manager: JobManager) -> None:
    for _ in range(6):
        noop(manager)
    claimed: list[str] = []
    barrier = threading.Barrier(6)

    def grab(owner: str) -> None:
        barrier.wait()
        job = manager.claim(owner)
        if job is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 1


# ------------------------------------------------------------------ batches


def test_commit_batch_is_atomic_with_its_writes(manager: JobManager) -> None:
    job_id = noop(manager, items=10)
    lease, _ = claim(manager)

    def broken_write(conn: sa.Connection) -> None:
        conn.execute(noop_items.insert().values(job_id=job_id, item=1))
        raise RuntimeError("disk on fire")

    batch = Batch(checkpoint={"next": 5}, processed=5, succeeded=5,
                  errors=[ItemError("row 2", "bad", "bad row")], write=broken_write)
    with pytest.raises(RuntimeError):
        commit(manager, lease, batch, rate=1.0)
    job = manager.get(job_id)
    assert job.checkpoint is None and job.processed == 0 and job.error_count == 0
    assert item_rows(manager, job_id) == []
    with manager.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(job_errors)).scalar_one() == 0


def test_a_job_completes_when_its_last_batch_is_written(manager: JobManager) -> None:
    """``completed_at`` (and the processing time) count the last batch's
    writes, however long they take: not the moment its commit began."""
    job_id = noop(manager, items=1)
    lease, _ = claim(manager)
    written: list[datetime] = []

    def write(conn: sa.Connection) -> None:
        conn.execute(noop_items.insert().values(job_id=job_id, item=0))
        written.append(utcnow())

    done, _ = manager.commit_last_batch(lease, Batch(checkpoint={"next": 1}, processed=1,
                                                     done=True, write=write),
                                        rate=None, current=manager.get(job_id))
    assert done.status is Status.COMPLETED
    assert done.completed_at is not None and done.completed_at >= written[0]
    assert manager.get(job_id).completed_at == done.completed_at


def test_batches_accumulate_progress_result_and_errors(manager: JobManager) -> None:
    job_id = noop(manager, items=10)
    lease, _ = claim(manager)
    set_total(manager, lease, 10)
    job = commit(manager, lease, Batch(
        checkpoint={"next": 4}, processed=4, succeeded=3, failed=1, counts={"rows": 4},
        errors=[ItemError("row 3", "bad_date", "registr_dt '13/45/2020' is not a date", 3)],
    ), rate=100.0)
    assert job.status is Status.PROCESSING and job.checkpoint == {"next": 4}
    progress = job.progress()
    assert progress["percent"] == 40.0 and progress["eta_seconds"] == 0.1
    job = commit(manager, lease, Batch(checkpoint={"next": 10}, processed=6, succeeded=6,
                                            counts={"rows": 6}, done=True), rate=100.0)
    assert job.status is Status.COMPLETED and job.result == {"rows": 10}
    assert job.progress()["percent"] == 100.0 and job.lease_owner is None
    errors, total = manager.errors(job_id)
    assert total == 1 and errors[0]["item"] == "row 3" and errors[0]["code"] == "bad_date"


def test_percent_stays_below_100_until_completed(manager: JobManager) -> None:
    job_id = noop(manager, items=4)
    lease, _ = claim(manager)
    set_total(manager, lease, 4)
    job = commit(manager, lease, Batch(checkpoint={"next": 4}, processed=4), rate=None)
    assert job.status is Status.PROCESSING and job.progress()["percent"] == 99.9
    assert manager.get(job_id).progress()["percent"] < 100


# ------------------------------------------------------------------ leases, fencing, reaper


def test_fenced_worker_cannot_write_after_losing_its_lease(manager: JobManager) -> None:
    job_id = noop(manager, items=10)
    old, _ = claim(manager, "frozen")
    expire_lease(manager, job_id)
    assert manager.reap_expired() == [job_id]
    assert manager.get(job_id).status is Status.PENDING
    new, _ = claim(manager, "rescuer")
    assert new.attempt == old.attempt + 1
    assert manager.heartbeat([old, new]) == {job_id}

    def write(conn: sa.Connection) -> None:
        conn.execute(noop_items.insert().values(job_id=job_id, item=99))

    with pytest.raises(LeaseLost):
        commit(manager, old, Batch(checkpoint={"next": 9}, processed=9, write=write), rate=None)
    with pytest.raises(LeaseLost):
        manager.fail(old, "I was frozen")
    job = manager.get(job_id)
    assert job.status is Status.PROCESSING and job.lease_owner == "rescuer" and job.checkpoint is None
    assert item_rows(manager, job_id) == []


def test_poison_job_fails_after_too_many_lost_leases(manager: JobManager, settings: Settings) -> None:
    job_id = noop(manager)
    for attempt in range(1, settings.poison_limit + 1):
        lease, _ = claim(manager)
        assert lease.attempt == attempt
        expire_lease(manager, job_id)
        manager.reap_expired()
    job = manager.get(job_id)
    assert job.status is Status.FAILED and job.crash_count == settings.poison_limit
    assert job.error is not None and "Poison" in job.error and job.completed_at is not None


def test_timeout_fails_job_with_clear_message(manager: JobManager) -> None:
    job_id = noop(manager)
    lease, _ = claim(manager)
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(
            timeout_seconds=60, run_started_at=utcnow() - timedelta(seconds=61)))
    assert manager.fail_timed_out() == [job_id]
    job = manager.get(job_id)
    assert job.status is Status.FAILED and job.error and "Timed out" in job.error and "1 min" in job.error
    with pytest.raises(LeaseLost):
        commit(manager, lease, Batch(checkpoint={}, processed=1), rate=None)


def test_timeout_counts_processing_time_not_paused_time(manager: JobManager) -> None:
    job_id = noop(manager)
    claim(manager)
    with manager.engine.begin() as conn:  # created long ago, but only 10 s of processing
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(
            timeout_seconds=60, started_at=utcnow() - timedelta(days=3),
            run_started_at=utcnow() - timedelta(seconds=10)))
    assert manager.fail_timed_out() == []


def test_release_returns_job_to_pending_and_resume_continues_from_checkpoint(manager: JobManager) -> None:
    job_id = noop(manager, items=10)
    lease, _ = claim(manager)
    commit(manager, lease, Batch(checkpoint={"next": 5}, processed=5), rate=None)
    manager.release(lease)
    job = manager.get(job_id)
    assert job.status is Status.PENDING and job.lease_owner is None and job.checkpoint == {"next": 5}
    again = manager.claim("w2")
    assert again is not None and again.checkpoint == {"next": 5} and again.attempt == 2


# ------------------------------------------------------------------ control


def test_cancel_pause_resume_rules(manager: JobManager) -> None:
    pending = noop(manager)
    assert manager.control(pending, "pause").status is Status.PAUSED
    assert manager.control(pending, "resume").status is Status.PENDING
    assert manager.control(pending, "cancel").status is Status.CANCELLED
    for action in ("cancel", "pause", "resume"):
        with pytest.raises(IllegalTransition):
            manager.control(pending, action)
    with pytest.raises(JobNotFound):
        manager.control("missing", "cancel")


def test_pause_and_cancel_take_effect_at_the_batch_boundary(manager: JobManager) -> None:
    job_id = noop(manager, items=10)
    lease, _ = claim(manager)
    job = manager.control(job_id, "pause")
    assert job.status is Status.PROCESSING and job.control is not None
    with pytest.raises(IllegalTransition, match="already requested"):
        manager.control(job_id, "pause")
    job = commit(manager, lease, Batch(checkpoint={"next": 3}, processed=3), rate=None)
    assert job.status is Status.PAUSED and job.lease_owner is None
    assert manager.claim("w1") is None  # paused jobs are not claimed
    manager.control(job_id, "resume")
    lease, _ = claim(manager)
    manager.control(job_id, "cancel")
    job = commit(manager, lease, Batch(checkpoint={"next": 6}, processed=3), rate=None)
    assert job.status is Status.CANCELLED and job.processed == 6 and job.completed_at is not None


def test_retry_creates_linked_job_with_same_input(manager: JobManager) -> None:
    job_id = noop(manager, items=3)
    with pytest.raises(IllegalTransition):
        manager.retry(job_id, created_by="t")
    manager.control(job_id, "cancel")
    new = manager.retry(job_id, created_by="second")
    assert new.retry_of == job_id and new.request == {"items": 3} and new.status is Status.PENDING
    assert new.created_by == "second" and new.id != job_id


# ------------------------------------------------------------------ listing, retention


def test_list_filters_total_and_order(manager: JobManager) -> None:
    ids = [noop(manager) for _ in range(5)]
    other = noop(manager, type_name="noop_other")
    manager.control(ids[0], "cancel")
    page, total = manager.list_jobs(type_name="noop", limit=2, offset=1)
    assert total == 5 and [j.id for j in page] == [ids[3], ids[2]]
    cancelled, total = manager.list_jobs(status="cancelled", type_name="noop")
    assert total == 1 and cancelled[0].id == ids[0]
    assert manager.list_jobs()[1] == 0  # internal types are hidden from default listings
    assert manager.list_jobs(include_hidden=True)[0][0].id == other


def test_retention_archives_old_finished_jobs_and_purges_their_uploads(manager: JobManager) -> None:
    upload = UploadSource(BytesIO(b"abc"), "f.csv", None)
    old = manager.create("noop", {"items": 1}, created_by="t", upload=upload).id
    recent = noop(manager)
    running = noop(manager, type_name="noop_other")
    for job_id in (old, recent):
        manager.control(job_id, "cancel")
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id.in_([old, running]))
                     .values(completed_at=utcnow() - timedelta(days=31), created_at=utcnow() - timedelta(days=40)))
    assert manager.archive_finished() == 1
    assert manager.get(old).archived_at is not None and manager.get(recent).archived_at is None
    visible = {j.id for j in manager.list_jobs(include_hidden=True)[0]}
    assert old not in visible and recent in visible
    assert old in {j.id for j in manager.list_jobs(include_hidden=True, include_archived=True)[0]}
    with manager.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(upload_chunks)).scalar_one() == 0
        assert conn.execute(sa.select(uploads.c.purged_at)).scalar_one() is not None
    with pytest.raises(JobValidationError, match="purged"):
        manager.retry(old, created_by="t")


def roomy(manager: JobManager) -> JobManager:
    """``manager`` with a 10,000-byte upload limit (chunks stay 1,024 bytes)."""
    return JobManager(manager.engine, manager.settings.model_copy(update={"max_upload_bytes": 10_000}))


def sink_upload(manager: JobManager, data: bytes, pieces: int = 7) -> StoredUpload:
    """``data`` through an UploadSink in ``pieces`` writes, finished."""
    sink = manager.upload_sink("t")
    step = -(-len(data) // pieces)
    for start in range(0, len(data), step):
        sink.write(data[start:start + step])
        if sink.ready:
            sink.flush()
    stored = sink.finish("f.csv", "text/csv")
    assert stored is not None
    return stored


def test_an_upload_stored_as_it_arrives_is_the_file_and_the_job_refers_to_it(manager: JobManager) -> None:
    data = bytes(range(256)) * 13  # 3,328 bytes: three full 1,024-byte chunks and a short one
    manager = roomy(manager)
    stored = sink_upload(manager, data)
    upload_id = stored.id
    assert open_upload(manager.engine, upload_id).read() == data
    job = manager.create("noop", {"items": 1}, created_by="t",
                         upload=UploadSource(BytesIO(data), "f.csv", "text/csv", stored=stored))
    assert job.upload_id == upload_id
    with manager.engine.connect() as conn:
        row = conn.execute(sa.select(uploads).where(uploads.c.id == upload_id)).one()
    assert (row.size, row.chunk_count, row.filename) == (len(data), 4, "f.csv")
    assert row.sha256 == hashlib.sha256(data).hexdigest()


def test_a_sink_refuses_past_the_limit_and_discards_what_it_stored(manager: JobManager) -> None:
    sink = roomy(manager).upload_sink("t")
    sink.write(b"x" * 4096)
    sink.flush()
    with pytest.raises(UploadTooLarge):
        sink.write(b"x" * 6000)
    sink.discard()
    with manager.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(uploads)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(upload_chunks)).scalar_one() == 0


def test_a_sink_keeps_only_what_its_first_bytes_allow(manager: JobManager) -> None:
    sink = roomy(manager).upload_sink("t", keep=lambda head: not head.startswith(b"PK"))
    sink.write(b"PK\x03\x04" + b"z" * 3000)
    assert not sink.ready
    assert sink.finish("a.zip", None) is None
    with manager.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(uploads)).scalar_one() == 0


def test_maintenance_removes_uploads_no_job_took_after_a_day(manager: JobManager) -> None:
    manager = roomy(manager)
    abandoned, young = sink_upload(manager, b"a" * 3000).id, sink_upload(manager, b"b" * 3000).id
    used = manager.create("noop", {"items": 1}, created_by="t",
                          upload=UploadSource(BytesIO(b"c" * 3000), "c.csv", None)).upload_id
    with manager.engine.begin() as conn:
        conn.execute(uploads.update().where(uploads.c.id.in_([abandoned, used]))
                     .values(created_at=utcnow() - timedelta(days=2)))
    assert manager.remove_abandoned_uploads() == 1
    with manager.engine.connect() as conn:
        assert set(conn.execute(sa.select(uploads.c.id)).scalars()) == {young, used}
        assert set(conn.execute(sa.select(upload_chunks.c.upload_id).distinct()).scalars()) == {young, used}


# ------------------------------------------------------------------ the worker, in process


def test_worker_runs_jobs_to_completion_exactly_once(manager: JobManager, running_worker: Worker) -> None:
    ids = [noop(manager, items=35, error_every=10) for _ in range(3)]
    ids.append(noop(manager, items=12, type_name="noop_other"))
    wait_for(lambda: all(manager.get(i).is_terminal for i in ids))
    for job_id in ids:
        job = manager.get(job_id)
        assert job.status is Status.COMPLETED, job.error
        assert item_rows(manager, job_id) == list(range(job.params["items"]))
        assert job.processed == job.total == job.params["items"]
        assert job.result["items"] == job.params["items"]
    assert manager.get(ids[0]).error_count == 3


def test_job_level_failure_keeps_committed_work(manager: JobManager, running_worker: Worker) -> None:
    job_id = noop(manager, items=50, fail_at=25)
    wait_for(lambda: manager.get(job_id).is_terminal)
    job = manager.get(job_id)
    assert job.status is Status.FAILED and job.error == "noop asked to fail at item 25"
    assert item_rows(manager, job_id) == list(range(20))  # batches 0-9 and 10-19 were committed


def test_worker_honours_cancel_of_a_running_job(manager: JobManager, running_worker: Worker) -> None:
    job_id = noop(manager, items=400, delay_ms=5)
    wait_for(lambda: manager.get(job_id).processed >= 10)
    manager.control(job_id, "cancel")
    wait_for(lambda: manager.get(job_id).is_terminal)
    job = manager.get(job_id)
    assert job.status is Status.CANCELLED and 10 <= job.processed < 400
    assert item_rows(manager, job_id) == list(range(job.processed))


def test_stopping_worker_releases_job_for_others(manager: JobManager) -> None:
    job_id = noop(manager, items=400, delay_ms=5)
    worker = Worker(manager, worker_id="stopper")
    thread = worker.start_in_thread()
    wait_for(lambda: manager.get(job_id).processed >= 10)
    worker.stop()
    thread.join(timeout=30)
    job = manager.get(job_id)
    assert job.status is Status.PENDING and job.lease_owner is None
    assert item_rows(manager, job_id) == list(range(job.processed))


# ------------------------------------------------------------------ reading


def test_recent_errors_of_a_page_are_the_last_few_of_each_job_oldest_first(manager: JobManager) -> None:
    """The listing reads a whole page's recent errors in one query; each job
    gets its own last N (not a share of the page's), oldest first."""
    counts = {"many": 12, "few": 2, "none": 0}
    ids: dict[str, str] = {}
    for name, count in counts.items():
        ids[name] = noop(manager, items=count or 1)
        lease, _ = claim(manager)
        errors = [ItemError(f"{name} {i}", "bad", f"{name} item {i}", i) for i in range(count)]
        commit(manager, lease, Batch(checkpoint={"next": 1}, processed=max(count, 1), failed=count,
                                     succeeded=0 if count else 1, errors=errors, done=True), rate=None)
    recent = manager.recent_errors_many(list(ids.values()), n=5)
    objects = JobObjects(manager)
    assert [e["item_index"] for e in recent[ids["many"]]] == [7, 8, 9, 10, 11]
    assert [e["item_index"] for e in recent[ids["few"]]] == [0, 1]
    assert ids["none"] not in recent
    page = objects.job_dicts([manager.get(job_id) for job_id in ids.values()])
    assert [len(job["recent_errors"]) for job in page] == [5, 2, 0]
    assert objects.job_dict(manager.get(ids["many"]))["recent_errors"][-1]["item"] == "many 11"
    assert objects.job_object(ids["many"]) == objects.job_dict(manager.get(ids["many"]))
    with pytest.raises(JobNotFound):
        objects.job_object("no-such-job")


def test_listing_objects_match_fresh_ones_as_jobs_run_finish_and_are_archived(manager: JobManager) -> None:
    """``list_job_dicts`` keeps finished jobs' objects; whatever it kept, a
    page must equal one rendered from scratch, before and after changes."""
    finished = noop(manager, items=3)
    lease, _ = claim(manager)
    commit(manager, lease, Batch(checkpoint={"next": 3}, processed=3, succeeded=2, failed=1, done=True,
                                 errors=[ItemError("item 1", "bad", "bad item", 1)]), rate=None)
    running = noop(manager, items=20, type_name="noop_other")
    pending = noop(manager, items=5)
    objects = JobObjects(manager)

    def assert_page_is_fresh(**filters: bool) -> list[dict[str, Any]]:
        page, total = objects.list_job_dicts(include_hidden=True, **filters)
        found, expected_total = manager.list_jobs(include_hidden=True, **filters)
        fresh = objects.job_dicts(found)
        for listed, expected in zip(page, fresh, strict=True):  # durations of running jobs tick
            ticking = dict.fromkeys(("duration_seconds", "elapsed_seconds", "processing_seconds"))
            assert {**listed, **ticking} == {**expected, **ticking}
        assert total == expected_total
        return page

    assert [j["id"] for j in assert_page_is_fresh()] == [pending, running, finished]
    lease, _ = claim(manager)  # takes the noop_other job
    assert lease.job_id == running
    commit(manager, lease, Batch(checkpoint={"next": 10}, processed=10, succeeded=10), rate=5.0)
    page = assert_page_is_fresh()
    assert page[1]["progress"]["processed"] == 10 and page[2]["recent_errors"][0]["item"] == "item 1"
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == finished).values(completed_at=utcnow() - timedelta(days=31)))
    assert manager.archive_finished() == 1
    assert finished not in [j["id"] for j in assert_page_is_fresh()]
    archived = assert_page_is_fresh(include_archived=True)[-1]
    assert archived["id"] == finished and archived["archived_at"] is not None
    assert objects.list_job_dicts(include_hidden=True, limit=1, offset=1)[1] == 2  # total, not the page
    assert objects.list_job_dicts(include_hidden=True, offset=50) == ([], 2)  # past the end


def test_last_commit_hands_the_type_to_the_next_pending_job(manager: JobManager) -> None:
    """The last batch and the claim of the next job of the same type commit
    together; what a commit returns equals what it stored."""
    first, second = noop(manager, items=2), noop(manager, items=1)
    other = noop(manager, type_name="noop_other")
    lease, _ = claim(manager)
    assert lease.job_id == first
    middle = commit(manager, lease, Batch(checkpoint={"next": 1}, processed=1, succeeded=1), rate=3.0)
    assert middle == manager.get(first)
    done, following = manager.commit_last_batch(
        lease, Batch(checkpoint={"next": 2}, processed=1, failed=1, done=True,
                     errors=[ItemError("item 1", "bad", "bad", 1)]), rate=2.0, current=middle)
    assert done == manager.get(first) and done.status is Status.COMPLETED and done.error_count == 1
    assert following is not None and following == manager.get(second)
    assert following.status is Status.PROCESSING and following.lease_owner == lease.owner
    assert manager.get(other).status is Status.PENDING  # only the same type is handed on
    last, nothing = manager.commit_last_batch(
        Lease(second, lease.owner, following.attempt),
        Batch(checkpoint={"next": 1}, processed=1, succeeded=1, done=True), rate=None, current=following)
    assert last == manager.get(second) and last.status is Status.COMPLETED and nothing is None
