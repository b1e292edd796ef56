"""The worker's side of the jobs table: the lease protocol.

Claim, heartbeat, progress, batch commits, release and failure. The
guarantees of the job lifecycle (docs/overview.md "Lifecycle") that live here:

* one processing job per type: the partial unique index
  ``uq_jobs_one_processing_per_type``; a claim that races another claim of the
  same type hits the index and simply moves on;
* fencing: every worker write carries ``lease_owner`` + ``attempt`` and
  ``status = 'processing'`` in its WHERE clause (:data:`cocoa.jobs.sql.FENCE`);
  a write that matches nothing raises :class:`LeaseLost` and its transaction
  (batch writes included) rolls back;
* the batch's writes, checkpoint, counters and item errors commit together in
  :meth:`WorkerLeases.commit_batch`.

Times come from the worker host's clock (hosts sharing a database run NTP;
leases are tens of seconds, so small skew is harmless).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cocoa.db.engine import reading
from cocoa.db.tables import job_errors, jobs
from cocoa.jobs import history, sql, webhooks
from cocoa.jobs.history import Event, EventRow
from cocoa.jobs.model import Control, Job, Status, utcnow
from cocoa.jobs.store import JobStore, run_seconds
from cocoa.jobs.types import Batch


class LeaseLost(Exception):
    """This worker no longer owns the job: another attempt took it over, or
    the job was failed by the reaper or a timeout."""


@dataclass(frozen=True, slots=True)
class Lease:
    """What a worker proves on every write: who it is and which attempt."""

    job_id: str
    owner: str
    attempt: int


class WorkerLeases(JobStore):
    # ------------------------------------------------------------------ claim

    def claim(
        self, owner: str, *, exclude_types: Iterable[str] = (), only_types: Iterable[str] | None = None,
    ) -> Job | None:
        """Take the oldest pending job whose type is not running anywhere."""
        excluded = set(exclude_types)
        only = set(only_types) if only_types is not None else None
        for _ in range(8):  # each lost race excludes one more type
            job = self._try_claim(owner, excluded, only)
            if not isinstance(job, str):
                return job
            excluded.add(job)
        return None

    def _try_claim(self, owner: str, excluded: set[str], only: set[str] | None) -> Job | str | None:
        statement = sql.claim(frozenset(excluded), frozenset(only) if only is not None else None, self.driver.name)
        try:
            # A transaction (not a lone statement) so the history's "claimed" commits with the claim.
            with self.worker_engine.begin() as conn:
                row = conn.execute(statement, self._claim_params(owner, utcnow())).one_or_none()
                if row is not None:
                    _record_claim(conn, row, owner)
        except IntegrityError:
            return self._type_of_next(excluded, only)  # another worker started this type first
        return Job.from_row(row) if row is not None else None

    def _claim_params(self, owner: str, now: Any) -> dict[str, Any]:
        return {"owner": owner, "now": now, "expires": now + timedelta(seconds=self.settings.lease_seconds)}

    def _type_of_next(self, excluded: set[str], only: set[str] | None) -> str:
        candidate = sql.claim_candidate(frozenset(excluded), frozenset(only) if only is not None else None)
        with reading(self.engine) as conn:
            picked = conn.execute(candidate.with_only_columns(jobs.c.type)).scalar()
        return str(picked)

    # ------------------------------------------------------------------ while running

    def heartbeat(self, leases: Iterable[Lease], totals: dict[str, int] | None = None) -> set[str]:
        """Extend the leases still held; return the ids this worker lost.

        ``totals`` publishes planned totals that no batch has committed yet
        (a slow first batch), so progress shows "0 / N" within a heartbeat.
        """
        lost: set[str] = set()
        expires = utcnow() + timedelta(seconds=self.settings.lease_seconds)
        totals = totals or {}
        with self.worker_engine.begin() as conn:
            for lease in leases:
                values: dict[str, Any] = {"lease_expires_at": expires}
                if lease.job_id in totals:
                    values["total"] = sa.func.coalesce(jobs.c.total, totals[lease.job_id])
                result = conn.execute(jobs.update().where(*sql.FENCE).values(**values), _fence_params(lease))
                if result.rowcount == 0:
                    lost.add(lease.job_id)
        return lost

    def report_progress(self, lease: Lease, done_in_batch: int) -> None:
        """Items finished in the running batch (display only, not a checkpoint)."""
        with self._single_statement() as conn:
            _fenced_update(conn, lease, batch_progress=done_in_batch, updated_at=utcnow())

    # ------------------------------------------------------------------ batches

    def commit_batch(self, lease: Lease, batch: Batch, *, rate: float | None, current: Job) -> Job:
        """The batch's writes, checkpoint, counters and item errors: all or nothing.

        ``current`` is the job as this worker last committed it: while the
        lease holds, nobody else changes its counters, so the new values are
        computed here and written by one fenced UPDATE. Only ``control`` can
        change under us (cancel/pause from the API); the UPDATE reads it at
        commit time through CASE expressions, so a request is honoured at this
        very boundary without a second round trip. Returns the job as
        committed; its status says whether to go on or stop.
        """
        return self._commit_batch(lease, batch, rate, current, claim_next=False)[0]

    def commit_last_batch(
        self, lease: Lease, batch: Batch, *, rate: float | None, current: Job,
    ) -> tuple[Job, Job | None]:
        """:meth:`commit_batch` for a job's last batch, plus the claim of the
        next pending job of the same type in the same transaction: the type
        passes from one job to the next without a moment in which another
        worker could take it, and without a round trip of its own. Returns
        the finished job and the next one (None if none is pending)."""
        try:
            return self._commit_batch(lease, batch, rate, current, claim_next=True)
        except IntegrityError:  # the claim raced another worker's: commit alone
            return self._commit_batch(lease, batch, rate, current, claim_next=False)

    def _commit_batch(
        self, lease: Lease, batch: Batch, rate: float | None, current: Job, *, claim_next: bool,
    ) -> tuple[Job, Job | None]:
        with self.worker_engine.begin() as conn:
            counts = dict(batch.counts)
            if batch.write is not None:
                for key, value in (batch.write(conn) or {}).items():
                    counts[key] = counts.get(key, 0) + value
            # After the writes, which can take a while: a job completes (and
            # its lease is renewed) when its last batch is written, not when
            # the batch's commit began.
            now = utcnow()
            if batch.errors:
                conn.execute(job_errors.insert(), [
                    {"job_id": lease.job_id, "item_ref": e.item_ref[:128], "item_index": e.item_index,
                     "severity": e.severity, "code": e.code[:64], "message": e.message,
                     "original": e.original, "created_at": now}
                    for e in batch.errors
                ])
            values = _progress_values(current, batch, counts, rate, now)
            boundary = None
            if batch.done:
                values.update(_finish_values(current, batch, now))
            else:
                boundary = self._boundary_params(current, now)
            # LeaseLost rolls back the batch's writes too.
            decided = _fenced_update_row(conn, lease, values, boundary, returning=sql.DECIDED_AT_COMMIT)
            claimed = self._after_commit(conn, lease, current.type, batch.done, decided, now,
                                         claim_next=claim_next and batch.done)
        # No NOTIFY here when the job ends: the worker takes the next job of
        # this type itself, and announces the type free when it stops (see
        # announce_type_free) - one round trip less per job.
        known = {field.name: getattr(current, field.name) for field in dataclasses.fields(Job)}
        decided_values = decided._asdict()
        del decided_values["webhook_url"]  # not a job field
        committed = Job.from_mapping(known | values | decided_values)
        return committed, Job.from_row(claimed) if claimed is not None else None

    def _after_commit(
        self, conn: sa.Connection, lease: Lease, type_name: str, done: bool, decided: Any, now: Any,
        *, claim_next: bool,
    ) -> Any:
        """What a commit that ended the run writes besides the job row: its
        history, its webhook outbox row and, with ``claim_next``, the claim
        of the next job of its type and that claim's history. One statement
        where the backend has writable CTEs; elsewhere up to three. Returns
        the claimed row, if any."""
        if claim_next and self.driver.writable_ctes:
            return self._hand_over(conn, lease, type_name, now)
        events = _commit_events(lease, done, decided.status, now)
        if events:  # if it ended for good and has a URL
            webhooks.queue(conn, lease.job_id, decided.status, decided.webhook_url, self.settings)
        claimed = None
        if claim_next:
            claimed = conn.execute(sql.claim(frozenset(), frozenset({type_name}), self.driver.name),
                                   self._claim_params(lease.owner, now)).one_or_none()
            if claimed is not None:
                events.append(_claim_event(claimed, lease.owner))
        history.record_all(conn, events)
        return claimed

    def _hand_over(self, conn: sa.Connection, lease: Lease, type_name: str, now: Any) -> Any:
        """The end of ``lease``'s job and the claim of the next of its type, one statement."""
        statement = sql.hand_over(type_name, bool(self.settings.webhook_url), self.driver.name)
        params = self._claim_params(lease.owner, now) | {
            "job_id": lease.job_id, "event": webhooks.FINAL_EVENTS[Status.COMPLETED.value]}
        if self.settings.webhook_url:
            params["global_url"] = self.settings.webhook_url
        return conn.execute(statement, params).one_or_none()

    def _boundary_params(self, current: Job, now: Any) -> dict[str, Any]:
        """Values for the batch-boundary CASE expressions (see
        :func:`cocoa.jobs.sql.boundary_expressions`): go on, or honour a cancel / pause."""
        return {
            "boundary_now": now, "boundary_run_seconds": run_seconds(current, now),
            "boundary_expires": now + timedelta(seconds=self.settings.lease_seconds),
        }

    # ------------------------------------------------------------------ the end of a run

    def release(self, lease: Lease) -> None:
        """Graceful stop: back to pending so any worker resumes it at once."""
        now = utcnow()
        with self.writer.begin() as conn:
            current = _fenced_update(conn, lease, updated_at=now)
            status = Status.CANCELLED if current.control is Control.CANCEL else (
                Status.PAUSED if current.control is Control.PAUSE else Status.PENDING)
            values: dict[str, Any] = {
                "status": status.value, "control": None, "lease_owner": None,
                "lease_expires_at": None, "processing_seconds": run_seconds(current, now),
            }
            if status is Status.CANCELLED:
                values["completed_at"] = now
            _fenced_update(conn, lease, **values)
            webhooks.enqueue(conn, lease.job_id, status.value, self.settings)  # if cancelled
            history.record(conn, lease.job_id, _RELEASE_EVENTS[status], lease.owner,
                           "the worker stopped at a batch boundary", at=now)
            self._notify(conn, current.type)

    def fail(self, lease: Lease, message: str) -> Job:
        now = utcnow()
        with self.writer.begin() as conn:
            current = _fenced_update(conn, lease, updated_at=now)
            failed = _fenced_update(
                conn, lease, status=Status.FAILED.value, error=message, control=None, lease_owner=None,
                lease_expires_at=None, completed_at=now, processing_seconds=run_seconds(current, now),
            )
            history.record(conn, lease.job_id, Event.FAILED, lease.owner, message, at=now)
            webhooks.enqueue(conn, lease.job_id, Status.FAILED.value, self.settings)
            self._notify(conn, current.type)
        return failed

    def record_run_error(self, lease: Lease, message: str) -> None:
        """Show why this attempt stopped on the job while it waits for its
        lease to expire and a retry (the reaper counts the attempt as a crash,
        and fails the job as poison after too many, quoting this message).

        Best effort: the storage that stopped the run may refuse this write
        too; then the worker log is all there is (and LeaseLost means the job
        has moved on already)."""
        with self._single_statement() as conn:
            _fenced_update(conn, lease, error=message, updated_at=utcnow())

    def announce_type_free(self, type_name: str) -> None:
        """A worker stopped running ``type_name``: wake the workers that
        skipped its pending jobs because it was busy."""
        if self.driver.notifies:
            with self._single_statement() as conn:
                self._notify(conn, type_name)


_RELEASE_EVENTS = {Status.CANCELLED: Event.CANCELLED, Status.PAUSED: Event.PAUSED,
                   Status.PENDING: Event.RELEASED}


def _claim_event(row: Any, owner: str) -> EventRow:
    return (row.id, Event.CLAIMED, owner, f"attempt {row.attempt}", row.updated_at)


def _record_claim(conn: sa.Connection, row: Any, owner: str) -> None:
    history.record_all(conn, [_claim_event(row, owner)])


def _commit_events(
    lease: Lease, done: bool, status: str, now: Any,
) -> list[EventRow]:
    """The history of a batch commit that ended the run (completed, or a
    cancel / pause request honoured at this boundary); empty if it goes on."""
    if done:
        return [(lease.job_id, Event.COMPLETED, lease.owner, None, now)]
    if status == Status.CANCELLED.value:
        return [(lease.job_id, Event.CANCELLED, lease.owner, "at a batch boundary", now)]
    if status == Status.PAUSED.value:
        return [(lease.job_id, Event.PAUSED, lease.owner, "at a batch boundary", now)]
    return []


def _fence_params(lease: Lease) -> dict[str, Any]:
    return {"fence_id": lease.job_id, "fence_owner": lease.owner, "fence_attempt": lease.attempt}


def _fenced_update(conn: sa.Connection, lease: Lease, **values: Any) -> Job:
    return Job.from_row(_fenced_update_row(conn, lease, values))


def _fenced_update_row(
    conn: sa.Connection, lease: Lease, values: dict[str, Any], boundary: dict[str, Any] | None = None,
    returning: tuple[str, ...] | None = None,
) -> sa.Row[Any]:
    """Set plain ``values`` (and, with ``boundary``, the batch-boundary CASE
    expressions) on the job this lease still holds; the row as written (or
    just its ``returning`` columns)."""
    statement = sql.fenced_update(tuple(sorted(values)), boundary is not None, returning)
    params = {f"new_{name}": value for name, value in values.items()} | _fence_params(lease) | (boundary or {})
    row = conn.execute(statement, params).one_or_none()
    if row is None:
        raise LeaseLost(f"job {lease.job_id}: lease of {lease.owner} attempt {lease.attempt} lost")
    return row


def _progress_values(
    current: Job, batch: Batch, counts: dict[str, int], rate: float | None, now: Any,
) -> dict[str, Any]:
    result = dict(current.result)
    for key, value in counts.items():
        result[key] = int(result.get(key, 0)) + int(value)
    if batch.result:
        result.update(batch.result)
    values: dict[str, Any] = {
        "checkpoint": batch.checkpoint, "result": result,
        "processed": current.processed + batch.processed,
        "succeeded": current.succeeded + batch.succeeded,
        "failed": current.failed + batch.failed,
        "error_count": current.error_count + len(batch.errors),
        "rate_per_second": rate, "updated_at": now, "batch_progress": 0,
    }
    if batch.phase is not None:
        values["phase"] = batch.phase
    if batch.total is not None or current.total is not None:
        # The planned total travels with the first commit (see Worker).
        values["total"] = batch.total if batch.total is not None else current.total
    return values


def _finish_values(current: Job, batch: Batch, now: Any) -> dict[str, Any]:
    """The last batch: completed, whatever was requested meanwhile."""
    values: dict[str, Any] = {
        "status": Status.COMPLETED.value, "control": None, "lease_owner": None,
        "lease_expires_at": None, "processing_seconds": run_seconds(current, now), "completed_at": now,
    }
    if current.error is not None:  # why an earlier attempt stopped: over now
        values["error"] = None
    if batch.total is None and current.total is not None:
        # A type whose plan over-counted (e.g. skipped blank lines) still ends at 100%.
        values["total"] = current.processed + batch.processed
    return values
