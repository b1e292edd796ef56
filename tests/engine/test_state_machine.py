"""Hypothesis drives control operations, claims, batches, crashes and reaping
in any order; the engine must never reach an illegal state."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cocoa.config import Settings
from cocoa.db.engine import make_engine
from cocoa.db.migrate import upgrade
from cocoa.db.tables import jobs
from cocoa.jobs.manager import JobManager, Lease, LeaseLost
from cocoa.jobs.model import TERMINAL, IllegalTransition, Status, utcnow
from cocoa.jobs.types import Batch

TYPES = ("noop", "noop_other")


class JobLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(self._dir.name) / 'sm.db'}"
        upgrade(url)
        self.manager = JobManager(make_engine(url), Settings(poison_limit=3))
        self.ids: list[str] = []
        self.leases: dict[str, Lease] = {}
        self.finished: dict[str, Status] = {}  # terminal states never change

    def teardown(self) -> None:
        self.manager.engine.dispose()
        self._dir.cleanup()

    @rule(type_name=st.sampled_from(TYPES))
    def create(self, type_name: str) -> None:
        self.ids.append(self.manager.create(type_name, {"items": 10}, created_by="h").id)

    @precondition(lambda self: self.ids)
    @rule(index=st.integers(0, 50), action=st.sampled_from(["cancel", "pause", "resume"]))
    def control(self, index: int, action: str) -> None:
        job_id = self.ids[index % len(self.ids)]
        with contextlib.suppress(IllegalTransition):
            self.manager.control(job_id, action)

    @precondition(lambda self: self.ids)
    @rule(index=st.integers(0, 50))
    def retry(self, index: int) -> None:
        with contextlib.suppress(IllegalTransition):
            self.ids.append(self.manager.retry(self.ids[index % len(self.ids)], created_by="h").id)

    @rule(owner=st.sampled_from(["a", "b"]))
    def claim(self, owner: str) -> None:
        job = self.manager.claim(owner)
        if job is not None:
            self.leases[job.id] = Lease(job.id, owner, job.attempt)

    @precondition(lambda self: self.leases)
    @rule(pick=st.integers(0, 50), done=st.booleans(), outcome=st.sampled_from(["commit", "release", "fail"]))
    def worker_step(self, pick: int, done: bool, outcome: str) -> None:
        lease = list(self.leases.values())[pick % len(self.leases)]
        try:
            if outcome == "commit":
                job = self.manager.commit_batch(lease, Batch(checkpoint={"n": 1}, processed=1, done=done),
                                                current=self.manager.get(lease.job_id),
                                                rate=1.0)
                if job.status is Status.PROCESSING:
                    return
            elif outcome == "release":
                self.manager.release(lease)
            else:
                self.manager.fail(lease, "boom")
        except LeaseLost:
            pass
        del self.leases[lease.job_id]

    @precondition(lambda self: self.leases)
    @rule(pick=st.integers(0, 50))
    def crash_and_reap(self, pick: int) -> None:
        """A worker dies: its lease runs out and the reaper takes the job back."""
        lease = list(self.leases.values())[pick % len(self.leases)]
        with self.manager.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == lease.job_id, jobs.c.attempt == lease.attempt,
                                             jobs.c.status == "processing")
                         .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        self.manager.reap_expired()
        # the dead worker keeps its stale lease object: later writes must be fenced out

    @invariant()
    def states_are_legal(self) -> None:
        with self.manager.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs)).all()
        processing_types = [r.type for r in rows if r.status == "processing"]
        assert len(processing_types) == len(set(processing_types)), "two running jobs of one type"
        for row in rows:
            status = Status(row.status)
            if status is Status.PROCESSING:
                assert row.lease_owner and row.lease_expires_at is not None
            else:
                assert row.lease_owner is None and row.lease_expires_at is None and row.control is None
            assert (row.completed_at is not None) == (status in TERMINAL)
            assert row.crash_count <= 3
            if row.id in self.finished:
                assert status is self.finished[row.id], "a finished job changed state"
            elif status in TERMINAL:
                self.finished[row.id] = status
            if row.retry_of:
                origin = next(r for r in rows if r.id == row.retry_of)
                assert origin.status in ("failed", "cancelled")


TestJobLifecycle = JobLifecycle.TestCase
TestJobLifecycle.settings = hyp_settings(max_examples=60, stateful_step_count=30, deadline=None)
