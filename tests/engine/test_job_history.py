"""Job history and the worker registry (issue 19), on SQLite and PostgreSQL.

History rows are written in the transaction of the change they describe:
these tests check both directions - a change that commits leaves its event,
one that rolls back leaves none - for every operation that writes them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.polling import wait_for

from cocoa.config import Settings
from cocoa.db.tables import job_events, jobs, workers
from cocoa.jobs import history
from cocoa.jobs import workers as registry
from cocoa.jobs.manager import JobManager, Lease
from cocoa.jobs.model import IllegalTransition, Status, utcnow
from cocoa.jobs.types import Batch
from cocoa.jobs.worker import Worker


@pytest.fixture
def settings() -> Settings:
    return Settings(batch_size=10, poll_seconds=0.05, heartbeat_seconds=0.1, lease_seconds=2,
                    reaper_seconds=0.1, poison_limit=3)


@pytest.fixture
def manager(db_engine: sa.Engine, settings: Settings) -> JobManager:
    return JobManager(db_engine, settings)


def noop(manager: JobManager, type_name: str = "noop") -> str:
    return manager.create(type_name, {"items": 25}, created_by="tester").id


def claim(manager: JobManager, owner: str = "w1") -> Lease:
    job = manager.claim(owner)
    assert job is not None
    return Lease(job.id, owner, job.attempt)


def events(manager: JobManager, job_id: str) -> list[tuple[str, str | None]]:
    return [(e.event, e.actor) for e in manager.history(job_id)]


def test_a_run_records_created_claimed_completed(manager: JobManager) -> None:
    job_id = manager.create("noop", {"items": 3}, created_by="alice", actor="alice (token ci)").id
    lease = claim(manager, "host:1:abc")
    done, _ = manager.commit_last_batch(lease, Batch(checkpoint={"next": 3}, processed=3, done=True),
                                        rate=None, current=manager.get(job_id))
    assert done.status is Status.COMPLETED
    found = manager.history(job_id)
    assert [(e.event, e.actor) for e in found] == [
        ("created", "alice (token ci)"), ("claimed", "host:1:abc"), ("completed", "host:1:abc")]
    assert found[1].detail == "attempt 1"
    assert found[0].at <= found[1].at <= found[2].at and found[0].at.tzinfo is not None


@pytest.mark.parametrize("global_url", [None, "https://hooks.example.org/all"])
def test_a_last_commit_that_claims_the_next_job_records_both_and_queues_the_webhook(
    db_engine: sa.Engine, settings: Settings, global_url: str | None,
) -> None:
    """The hand-over (one statement on PostgreSQL, several on SQLite): the
    finished job's "completed" and outbox row, the next job's "claimed"."""
    from cocoa.db.tables import webhook_deliveries

    manager = JobManager(db_engine, settings.model_copy(update={"webhook_url": global_url}))
    first = manager.create("noop", {"items": 1}, created_by="alice",
                           webhook_url="https://hooks.example.org/own").id
    second = noop(manager)
    lease = claim(manager, "w1")
    assert lease.job_id == first
    done, claimed = manager.commit_last_batch(lease, Batch(checkpoint={"next": 1}, processed=1, done=True),
                                              rate=None, current=manager.get(first))
    assert done.status is Status.COMPLETED and claimed is not None and claimed.id == second
    assert claimed.status is Status.PROCESSING and claimed.lease_owner == "w1" and claimed.attempt == 1
    assert events(manager, first) == [("created", "alice"), ("claimed", "w1"), ("completed", "w1")]
    assert events(manager, second) == [("created", "tester"), ("claimed", "w1")]
    assert manager.history(second)[-1].detail == "attempt 1"
    with db_engine.connect() as conn:
        queued = conn.execute(sa.select(webhook_deliveries.c.job_id, webhook_deliveries.c.url,
                                        webhook_deliveries.c.event)).all()
    assert [tuple(row) for row in queued] == [(first, "https://hooks.example.org/own", "job.completed")]
    # The second ends with nothing pending: no claim; its webhook is the global one, if any.
    lease2 = Lease(second, "w1", 1)
    _, none = manager.commit_last_batch(lease2, Batch(checkpoint={"next": 25}, processed=25, done=True),
                                        rate=None, current=claimed)
    assert none is None and events(manager, second)[-1] == ("completed", "w1")
    with db_engine.connect() as conn:
        urls = conn.execute(sa.select(webhook_deliveries.c.url).where(webhook_deliveries.c.job_id == second)).all()
    assert [row.url for row in urls] == ([global_url] if global_url else [])


def test_control_actions_record_their_actor(manager: JobManager) -> None:
    job_id = noop(manager)
    manager.control(job_id, "pause", actor="alice")
    manager.control(job_id, "resume", actor="bob (token ops)")
    manager.control(job_id, "cancel", actor="carol")
    assert events(manager, job_id) == [("created", "tester"), ("paused", "alice"),
                                       ("resumed", "bob (token ops)"), ("cancelled", "carol")]


def test_requests_to_a_running_job_and_their_boundary(manager: JobManager) -> None:
    job_id = noop(manager)
    lease = claim(manager)
    manager.control(job_id, "pause", actor="alice")
    manager.control(job_id, "resume", actor="alice")  # withdrawn before the boundary
    manager.control(job_id, "cancel", actor="bob")
    job = manager.commit_batch(lease, Batch(checkpoint={"next": 10}, processed=10),
                               rate=None, current=manager.get(job_id))
    assert job.status is Status.CANCELLED
    found = manager.history(job_id)
    assert [(e.event, e.actor) for e in found][1:] == [
        ("claimed", "w1"), ("pause_requested", "alice"), ("resumed", "alice"),
        ("cancel_requested", "bob"), ("cancelled", "w1")]
    assert found[3].detail and "withdrawn" in found[3].detail


def test_a_refused_control_writes_no_event(manager: JobManager) -> None:
    job_id = noop(manager)
    manager.control(job_id, "cancel", actor="alice")
    with pytest.raises(IllegalTransition):
        manager.control(job_id, "pause", actor="mallory")
    assert events(manager, job_id) == [("created", "tester"), ("cancelled", "alice")]


def test_a_rolled_back_control_writes_no_event_and_no_change(
    manager: JobManager, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If anything after the event fails, the transaction - state change and
    event together - rolls back."""
    job_id = noop(manager)
    original = history.record

    def record_then_fail(conn: sa.Connection, *args: Any, **kwargs: Any) -> None:
        original(conn, *args, **kwargs)
        raise RuntimeError("boom after the event")

    monkeypatch.setattr(history, "record", record_then_fail)
    with pytest.raises(RuntimeError):
        manager.control(job_id, "pause", actor="alice")
    monkeypatch.undo()
    assert manager.get(job_id).status is Status.PENDING
    assert events(manager, job_id) == [("created", "tester")]


def test_a_refused_creation_writes_no_event(manager: JobManager) -> None:
    from cocoa.jobs.types import JobValidationError

    with pytest.raises(JobValidationError):
        manager.create("noop", {"items": -1}, created_by="tester")
    with manager.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(job_events)).scalar_one() == 0


def test_failure_retry_and_rescue_are_recorded(manager: JobManager) -> None:
    job_id = noop(manager)
    lease = claim(manager)
    manager.fail(lease, "the file is broken")
    retried = manager.retry(job_id, created_by="alice", actor="alice (token ci)")
    old = manager.history(job_id)
    assert [(e.event, e.actor, e.detail) for e in old][-2:] == [
        ("failed", "w1", "the file is broken"), ("retried_as", "alice (token ci)", retried.id)]
    assert [(e.event, e.detail) for e in manager.history(retried.id)] == [("created", f"retry of {job_id}")]

    lease = claim(manager, "w2")
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == retried.id)
                     .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert manager.reap_expired() == [retried.id]
    rescued = manager.history(retried.id)
    assert [(e.event, e.actor) for e in rescued][-2:] == [("lease_lost", "system"), ("rescued", "system")]
    assert "w2" in (rescued[-2].detail or "")
    assert lease.job_id == retried.id


def test_timeouts_are_recorded_as_failed_by_system(manager: JobManager) -> None:
    job_id = noop(manager)
    claim(manager)
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id)
                     .values(timeout_seconds=1, run_started_at=utcnow() - timedelta(seconds=60)))
    assert manager.fail_timed_out() == [job_id]
    last = manager.history(job_id)[-1]
    assert (last.event, last.actor) == ("failed", "system") and "Timed out" in (last.detail or "")


def test_history_stays_with_an_archived_job(manager: JobManager) -> None:
    job_id = noop(manager)
    manager.control(job_id, "cancel", actor="alice")
    with manager.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id)
                     .values(completed_at=utcnow() - timedelta(days=400)))
    assert manager.archive_finished() == 1
    assert events(manager, job_id) == [("created", "tester"), ("cancelled", "alice")]
    with manager.engine.begin() as conn:  # and goes when its job goes
        conn.execute(jobs.delete().where(jobs.c.id == job_id))
        assert conn.execute(sa.select(sa.func.count()).select_from(job_events)).scalar_one() == 0


# ---------------------------------------------------------------------- workers


def test_registry_live_heartbeat_prune_deregister(manager: JobManager, settings: Settings) -> None:
    registry.register(manager.engine, "h:1:a", ["noop"])
    registry.register(manager.engine, "h:2:b", None)
    found = {w.id: w for w in registry.list_workers(manager.engine, settings.lease_seconds)}
    assert set(found) == {"h:1:a", "h:2:b"} and all(w.live for w in found.values())
    assert found["h:1:a"].types == ["noop"] and found["h:2:b"].types is None
    with manager.engine.begin() as conn:  # h:1:a stops heart-beating
        conn.execute(workers.update().where(workers.c.id == "h:1:a")
                     .values(last_heartbeat=utcnow() - timedelta(seconds=settings.lease_seconds + 1)))
    found = {w.id: w for w in registry.list_workers(manager.engine, settings.lease_seconds)}
    assert not found["h:1:a"].live and found["h:2:b"].live
    assert manager.prune_dead_workers() == 1
    assert [w.id for w in registry.list_workers(manager.engine, settings.lease_seconds)] == ["h:2:b"]
    registry.heartbeat(manager.engine, "h:1:a", ["noop"])  # a stalled worker that comes back re-registers
    assert {w.id for w in registry.list_workers(manager.engine, settings.lease_seconds)} == {"h:1:a", "h:2:b"}
    registry.deregister(manager.engine, "h:1:a")
    registry.deregister(manager.engine, "h:2:b")
    assert registry.list_workers(manager.engine, settings.lease_seconds) == []


def test_pending_jobs_no_live_worker_serves(manager: JobManager, settings: Settings) -> None:
    noop(manager)
    noop(manager, "noop_other")
    types = ["noop", "noop_other"]
    assert registry.unserved_pending(manager.engine, settings.lease_seconds, types) == {"noop": 1, "noop_other": 1}
    registry.register(manager.engine, "only-noop", ["noop"])
    assert registry.unserved_pending(manager.engine, settings.lease_seconds, types) == {"noop_other": 1}
    registry.register(manager.engine, "every-type", None)
    assert registry.unserved_pending(manager.engine, settings.lease_seconds, types) == {}


def test_a_worker_registers_shows_its_job_and_deregisters(manager: JobManager, settings: Settings) -> None:
    job_id = manager.create("noop", {"items": 30, "delay_ms": 50}, created_by="tester").id
    worker = Worker(manager, worker_id="inproc-1", types=["noop"])
    thread = worker.start_in_thread()
    try:
        def running_here() -> bool:
            listed = registry.list_workers(manager.engine, settings.lease_seconds)
            return any(w.id == "inproc-1" and w.current_jobs == [{"id": job_id, "type": "noop"}]
                       for w in listed)
        wait_for(running_here)
        first = registry.list_workers(manager.engine, settings.lease_seconds)[0]
        wait_for(lambda: registry.list_workers(manager.engine, settings.lease_seconds)[0].last_heartbeat
                 > first.last_heartbeat)
    finally:
        worker.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert registry.list_workers(manager.engine, settings.lease_seconds) == []
    assert ("claimed", "inproc-1") in events(manager, job_id)
