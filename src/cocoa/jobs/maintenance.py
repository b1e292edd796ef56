"""Housekeeping of the jobs table, run periodically by every worker.

Reaping expired leases, failing jobs past their time limit, and retention
(archiving finished jobs and purging their files). Each pass is one
transaction that locks the rows it judges (where the backend has row locks),
and each change is guarded by the attempt it judged
(:func:`cocoa.jobs.sql.attempt_update`), so running it on several workers at
once is harmless.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from cocoa.db.tables import jobs, upload_chunks, uploads
from cocoa.jobs import history, sql, webhooks
from cocoa.jobs import workers as worker_registry
from cocoa.jobs.history import SYSTEM, Event
from cocoa.jobs.model import TERMINAL, Control, Job, Status, utcnow
from cocoa.jobs.store import JobStore, run_seconds
from cocoa.jobs.uploads import delete_uploads

log = logging.getLogger("cocoa.jobs")


class Maintenance(JobStore):
    def reap_expired(self) -> list[str]:
        """Jobs whose worker stopped heart-beating go back to the queue (or
        fail as poison after too many crashes). Returns the affected ids."""
        now = utcnow()
        limit = self.settings.poison_limit
        affected: list[str] = []
        with self.writer.begin() as conn:
            expired = conn.execute(self.driver.lock_rows(
                sa.select(jobs).where(jobs.c.status == Status.PROCESSING.value,
                                      jobs.c.lease_expires_at < now)
            )).all()
            for row in expired:
                job = Job.from_row(row)
                values = _reaped_values(job, now, limit)
                if not conn.execute(sql.attempt_update(job.id, job.attempt).values(**values)).rowcount:
                    continue  # the worker committed a new state meanwhile
                _record_reaped(conn, job, values, now)
                webhooks.enqueue(conn, job.id, values["status"], self.settings)  # if it ended
                affected.append(job.id)
                log.warning("job %s type=%s lease expired (owner %s, attempt %d): %s",
                            job.id, job.type, job.lease_owner, job.attempt, values["status"])
                self._notify(conn, job.type)
        if affected:
            self._wake_local()
        return affected

    def fail_timed_out(self) -> list[str]:
        """Jobs processing longer than their limit fail with a clear message."""
        now = utcnow()
        failed: list[str] = []
        with self.writer.begin() as conn:
            running = conn.execute(self.driver.lock_rows(
                sa.select(jobs).where(jobs.c.status == Status.PROCESSING.value,
                                      jobs.c.kind == "job")  # a group's time is its children's
            )).all()
            for row in running:
                job = Job.from_row(row)
                spent = run_seconds(job, now)
                if spent <= job.timeout_seconds:
                    continue
                error = (f"Timed out: processing took longer than the limit of "
                         f"{_human_seconds(job.timeout_seconds)}. Work committed so far is kept; "
                         f"retry the job to continue from a fresh start.")
                if not conn.execute(sql.attempt_update(job.id, job.attempt).values(
                    status=Status.FAILED.value, control=None, lease_owner=None,
                    lease_expires_at=None, completed_at=now, updated_at=now,
                    processing_seconds=spent, error=error,
                )).rowcount:
                    continue
                history.record(conn, job.id, Event.FAILED, SYSTEM, error, at=now)
                webhooks.enqueue(conn, job.id, Status.FAILED.value, self.settings)
                failed.append(job.id)
                log.warning("job %s type=%s failed: timeout after %.0fs", job.id, job.type, spent)
                self._notify(conn, job.type)
        return failed

    def prune_dead_workers(self) -> int:
        """Forget workers whose heartbeat is older than the lease (their jobs
        are rescued by :meth:`reap_expired`)."""
        with self.writer.begin() as conn:
            return worker_registry.prune_dead(conn, self.settings.lease_seconds)

    def archive_finished(self) -> int:
        """Retention: hide finished jobs older than the limit; purge their blobs."""
        now = utcnow()
        cutoff = now - timedelta(days=self.settings.retention_days)
        with self.writer.begin() as conn:
            ids = conn.execute(sa.select(jobs.c.id, jobs.c.upload_id).where(
                jobs.c.status.in_([s.value for s in TERMINAL]),
                jobs.c.completed_at < cutoff, jobs.c.archived_at.is_(None),
            )).all()
            if not ids:
                return 0
            conn.execute(jobs.update().where(jobs.c.id.in_([r.id for r in ids]))
                         .values(archived_at=now))
            if self.settings.purge_archived_uploads:
                _purge_uploads(conn, {r.upload_id for r in ids if r.upload_id}, now)
        log.info("retention: archived %d finished jobs older than %s days", len(ids),
                 self.settings.retention_days)
        return len(ids)

    def remove_abandoned_uploads(self) -> int:
        """Uploads no job refers to, a day after they began: files stored as
        they streamed in (:class:`cocoa.jobs.uploads.UploadSink`) whose
        request died with its server before the job was created or the file
        discarded. A day, so no upload still arriving is touched."""
        cutoff = utcnow() - ABANDONED_UPLOAD_AGE
        with self.writer.begin() as conn:
            abandoned: list[str] = list(conn.execute(sa.select(uploads.c.id).where(
                uploads.c.created_at < cutoff,
                # NOT IN, not NOT EXISTS: the ids are gathered once (jobs.upload_id has no index)
                uploads.c.id.not_in(sa.select(jobs.c.upload_id).where(jobs.c.upload_id.is_not(None))),
            )).scalars())
            if abandoned:
                delete_uploads(conn, abandoned)
        if abandoned:
            log.warning("removed %d abandoned uploads (no job, older than %s)", len(abandoned),
                        ABANDONED_UPLOAD_AGE)
        return len(abandoned)


ABANDONED_UPLOAD_AGE = timedelta(days=1)


def _record_reaped(conn: sa.Connection, job: Job, values: dict[str, Any], now: Any) -> None:
    """History of a rescue: the lease was lost, then what became of the job."""
    history.record(conn, job.id, Event.LEASE_LOST, SYSTEM,
                   f"worker {job.lease_owner} stopped renewing the lease of attempt {job.attempt}", at=now)
    status = values["status"]
    if status == Status.PENDING.value:
        history.record(conn, job.id, Event.RESCUED, SYSTEM, "back to the queue; resumes from its checkpoint",
                       at=now)
    elif status == Status.FAILED.value:
        history.record(conn, job.id, Event.FAILED, SYSTEM, values.get("error"), at=now)
    elif status == Status.CANCELLED.value:
        history.record(conn, job.id, Event.CANCELLED, SYSTEM, "as requested before the lease was lost", at=now)
    else:
        history.record(conn, job.id, Event.PAUSED, SYSTEM, "as requested before the lease was lost", at=now)


def _purge_uploads(conn: sa.Connection, upload_ids: set[str], now: Any) -> None:
    """Purge only blobs no live (unarchived) job still points at."""
    if not upload_ids:
        return
    still_used: set[str] = set(conn.execute(sa.select(jobs.c.upload_id).where(
        jobs.c.upload_id.in_(upload_ids), jobs.c.archived_at.is_(None)
    )).scalars())
    purgeable = list(upload_ids - still_used)
    if purgeable:
        conn.execute(upload_chunks.delete().where(upload_chunks.c.upload_id.in_(purgeable)))
        conn.execute(uploads.update().where(uploads.c.id.in_(purgeable)).values(purged_at=now))


def _reaped_values(job: Job, now: Any, poison_limit: int) -> dict[str, Any]:
    """A run whose lease expired counts as a crash: back to the queue, parked,
    cancelled as requested, or failed as poison after ``poison_limit`` crashes."""
    crashes = job.crash_count + 1
    values: dict[str, Any] = {
        "crash_count": crashes, "lease_owner": None, "lease_expires_at": None, "updated_at": now,
        "processing_seconds": run_seconds(job, now), "control": None,
    }
    if job.control is Control.CANCEL:
        values.update(status=Status.CANCELLED.value, completed_at=now)
    elif crashes >= poison_limit:
        last = f" The last error: {job.error}" if job.error else ""
        values.update(
            status=Status.FAILED.value, completed_at=now,
            error=(f"Poison job: its runs stopped without finishing {crashes} times "
                   f"(limit {poison_limit}). Work committed so far is kept.{last}"),
        )
    elif job.control is Control.PAUSE:
        values["status"] = Status.PAUSED.value
    else:
        values["status"] = Status.PENDING.value
    return values


def _human_seconds(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
