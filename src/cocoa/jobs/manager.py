"""Every database operation of the jobs engine, and nothing else.

The API, the CLI and the worker all go through :class:`JobManager`; none of
them writes to the ``jobs`` table directly. Each method is one named operation
with one transaction, so the guarantees of DESIGN.md "Job lifecycle" can be
read off this file:

* one processing job per type: the partial unique index
  ``uq_jobs_one_processing_per_type``; a claim that races another claim of the
  same type hits the index and simply moves on;
* fencing: every worker write carries ``lease_owner`` + ``attempt`` and
  ``status = 'processing'`` in its WHERE clause; a write that matches nothing
  raises :class:`LeaseLost` and its transaction (batch writes included) rolls
  back;
* the batch's writes, checkpoint, counters and item errors commit together in
  :meth:`JobManager.commit_batch`.

Times come from the worker host's clock (hosts sharing a database run NTP;
leases are tens of seconds, so small skew is harmless).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cocoa.config import Settings
from cocoa.db.engine import BUSY_TIMEOUT_OPTION, SQLITE_BUSY_TIMEOUT_MS, is_postgres, reading, writing
from cocoa.db.tables import job_errors, jobs, upload_chunks, uploads
from cocoa.jobs.jobs import (
    RETRYABLE,
    TERMINAL,
    Control,
    IllegalTransition,
    Job,
    Status,
    apply_control,
    as_utc,
    utcnow,
)
from cocoa.jobs.types import Batch, CreateContext, JobValidationError, all_job_types, get_job_type
from cocoa.jobs.uploads import UploadPurged, open_upload, store_upload

log = logging.getLogger("cocoa.jobs")

NOTIFY_CHANNEL = "cocoa_jobs"
RECENT_ERRORS = 5  # item errors shown with a job object


class JobNotFound(Exception):
    pass


class LeaseLost(Exception):
    """This worker no longer owns the job: another attempt took it over, or
    the job was failed by the reaper or a timeout."""


@dataclass(frozen=True, slots=True)
class Lease:
    """What a worker proves on every write: who it is and which attempt."""

    job_id: str
    owner: str
    attempt: int


@dataclass(frozen=True, slots=True)
class UploadSource:
    stream: IO[bytes]
    filename: str | None
    content_type: str | None


class JobManager:
    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.postgres = is_postgres(engine)
        self.writer = writing(engine)
        self.worker_engine = _worker_engine(engine, settings)
        self._rendered = RenderedJobs()
        # In-process listeners (the embedded worker) woken when work appears.
        self._wake_listeners: list[Callable[[], None]] = []

    def dispose(self) -> None:
        self.engine.dispose()
        if is_postgres(self.worker_engine):
            self.worker_engine.dispose()

    # ------------------------------------------------------------------ create

    def create(
        self, type_name: str, request: dict[str, Any], *, created_by: str | None,
        upload: UploadSource | None = None, retry_of: str | None = None,
        upload_id: str | None = None,
    ) -> Job:
        """Validate and record a job in one transaction with its upload.

        Two orders, one transaction each:

        * a job with a file validates *first*, from the client's
          spooled upload, before the transaction has written anything - on
          SQLite a deferred transaction then holds no lock while a large file
          is inspected - and only then stores the file and the job row;
        * a job without a file inserts the row first, because its
          validation may write rows that reference it (a fixed geocoding
          selection).

        A refusal rolls everything back either way.
        """
        job_type = get_job_type(type_name)
        if job_type.needs_upload and upload is None and upload_id is None:
            raise JobValidationError("A file is required for this job type.", code="file_required")
        job_id = str(uuid.uuid4())
        row = {
            "id": job_id, "type": type_name, "status": Status.PENDING.value, "request": request,
            "result": {}, "timeout_seconds": self.settings.job_timeout_seconds,
            "retry_of": retry_of, "created_by": created_by,
        }
        if upload is not None or upload_id is not None:
            with self.engine.begin() as conn:
                stream = upload.stream if upload is not None else self._stored_upload(upload_id)
                params = job_type.validate(self._create_context(conn, job_id, request, stream, upload))
                if upload is not None:
                    upload.stream.seek(0)
                    upload_id = self._store(conn, upload, created_by)
                created = Job.from_mapping(self._insert_job(conn, {**row, "params": params, "upload_id": upload_id}))
        else:
            with self.writer.begin() as conn:
                self._insert_job(conn, {**row, "params": {}})
                params = job_type.validate(self._create_context(conn, job_id, request, None, None))
                created = Job.from_row(conn.execute(jobs.update().where(jobs.c.id == job_id)
                                                    .values(params=params).returning(*jobs.c)).one())
        self._wake_local()
        return created  # as created (pending), even if a worker claims it now

    def _create_context(
        self, conn: sa.Connection, job_id: str, request: dict[str, Any], stream: IO[bytes] | None,
        upload: UploadSource | None,
    ) -> CreateContext:
        return CreateContext(
            conn=conn, job_id=job_id, params=dict(request), settings=self.settings, upload=stream,
            upload_filename=upload.filename if upload else None,
        )

    def _insert_job(self, conn: sa.Connection, values: dict[str, Any]) -> dict[str, Any]:
        """Insert the row and, on PostgreSQL, queue the NOTIFY for idle workers
        in the same statement (one round trip less between a request and its
        job starting; a NOTIFY is delivered at COMMIT wherever it is issued)."""
        now = utcnow()
        statement = jobs.insert().values(**values, created_at=now, updated_at=now).returning(*jobs.c)
        if self.postgres:
            statement = statement.returning(sa.func.pg_notify(NOTIFY_CHANNEL, jobs.c.type).label("notified"))
        data = conn.execute(statement).one()._asdict()
        data.pop("notified", None)
        return data

    def _store(self, conn: sa.Connection, upload: UploadSource, created_by: str | None) -> str:
        return store_upload(
            conn, upload.stream, filename=upload.filename, content_type=upload.content_type,
            created_by=created_by, max_bytes=self.settings.max_upload_bytes,
            chunk_bytes=self.settings.upload_chunk_bytes,
        ).id

    def _stored_upload(self, upload_id: str | None) -> IO[bytes]:
        """The file of an earlier job (for retry)."""
        assert upload_id is not None
        try:
            return open_upload(self.engine, upload_id)
        except UploadPurged:
            raise JobValidationError(
                "The original file was purged by retention; upload it again.",
                code="upload_purged", status=409,
            ) from None

    # ------------------------------------------------------------------ read

    def get(self, job_id: str) -> Job:
        with self._reader() as conn:
            return _get_job(conn, job_id)

    def job_object(self, job_id: str) -> dict[str, Any]:
        """``job_dict(get(job_id))`` on one connection: the most polled read
        of the API (watchers, the CLI) takes one pool checkout, not two."""
        with self._reader() as conn:
            job = _get_job(conn, job_id)
            recent = _recent_errors(conn, [job.id], RECENT_ERRORS) if job.error_count else {}
        return job.to_dict(recent.get(job.id, []))

    def list_jobs(
        self, *, status: str | None = None, type_name: str | None = None, limit: int = 50,
        offset: int = 0, include_archived: bool = False, include_hidden: bool = False,
    ) -> tuple[list[Job], int]:
        """Newest first; ``total`` counts every match, not just the page."""
        where = _listing_filter(status, type_name, include_archived, include_hidden)
        with self._reader() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*where)).scalar_one()
            rows = conn.execute(
                sa.select(jobs).where(*where).order_by(*_NEWEST_FIRST).limit(limit).offset(offset)
            ).all()
        return [Job.from_row(r) for r in rows], int(total)

    def list_job_dicts(
        self, *, status: str | None = None, type_name: str | None = None, limit: int = 50,
        offset: int = 0, include_archived: bool = False, include_hidden: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:
        """:meth:`list_jobs` as public job objects (the API's listing).

        A finished job never changes again except for being archived, so its
        object (recent errors included) is kept per process under its
        (id, updated_at, archived_at): a page then reads the page's keys and
        only the rows it has not rendered yet - usually just the running jobs.
        """
        where = _listing_filter(status, type_name, include_archived, include_hidden)
        with self._reader() as conn:
            keys = conn.execute(  # the total rides along with the page: one round trip less
                sa.select(*_RENDER_KEY, sa.func.count().over().label("total")).where(*where)
                .order_by(*_NEWEST_FIRST).limit(limit).offset(offset)
            ).all()
            if keys:
                total = keys[0].total
            else:  # past the end (or nothing matches): count on its own
                total = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*where)).scalar_one()
            rendered = {key.id: self._rendered.get(_render_key(key.id, key.updated_at, key.archived_at))
                        for key in keys}
            missing = [job_id for job_id, found in rendered.items() if found is None]
            rows = conn.execute(sa.select(jobs).where(jobs.c.id.in_(missing))).all() if missing else []
        fresh = [Job.from_row(r) for r in rows]
        for job, data in zip(fresh, self.job_dicts(fresh), strict=True):
            rendered[job.id] = data
            if job.is_terminal:
                self._rendered.put(_render_key(job.id, job.updated_at, job.archived_at), data)
        return [data for data in rendered.values() if data is not None], int(total)

    def counts_by_status(self, include_hidden: bool = False) -> dict[str, int]:
        where = [jobs.c.archived_at.is_(None)]
        if not include_hidden:
            where.append(jobs.c.type.in_(all_job_types()))
        with self._reader() as conn:
            rows = conn.execute(
                sa.select(jobs.c.status, sa.func.count()).where(*where).group_by(jobs.c.status)
            ).all()
        counts = {s.value: 0 for s in Status}
        counts.update({str(row[0]): int(row[1]) for row in rows})
        return counts

    def errors(self, job_id: str, *, limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        self.get(job_id)  # 404 for unknown jobs rather than an empty list
        with self._reader() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(job_errors).where(job_errors.c.job_id == job_id)
            ).scalar_one()
            rows = conn.execute(
                sa.select(job_errors).where(job_errors.c.job_id == job_id)
                .order_by(job_errors.c.id).limit(limit).offset(offset)
            ).all()
        return [_error_dict(r) for r in rows], int(total)

    def recent_errors(self, job_id: str, n: int = RECENT_ERRORS) -> list[dict[str, Any]]:
        return self.recent_errors_many([job_id], n).get(job_id, [])

    def recent_errors_many(self, job_ids: list[str], n: int = RECENT_ERRORS) -> dict[str, list[dict[str, Any]]]:
        """The last ``n`` item errors of each job, oldest first: one query for a whole page."""
        if not job_ids:
            return {}
        with self._reader() as conn:
            return _recent_errors(conn, job_ids, n)

    def job_dict(self, job: Job) -> dict[str, Any]:
        return self.job_dicts([job])[0]

    def job_dicts(self, page: list[Job]) -> list[dict[str, Any]]:
        """Public job objects (DESIGN.md) with their recent errors, read in
        one query for the whole page rather than one per job."""
        recent = self.recent_errors_many([j.id for j in page if j.error_count])
        return [j.to_dict(recent.get(j.id, [])) for j in page]

    # ------------------------------------------------------------------ control

    def control(self, job_id: str, action: str) -> Job:
        """cancel / pause / resume, atomically against the current state."""
        with self.writer.begin() as conn:
            row = conn.execute(self._locked(sa.select(jobs).where(jobs.c.id == job_id))).one_or_none()
            if row is None:
                raise JobNotFound(f"No job with id {job_id!r}.")
            job = Job.from_row(row)
            outcome = apply_control(action, job.status, job.control)
            values: dict[str, Any] = {
                "status": outcome.status.value,
                "control": outcome.control.value if outcome.control else None,
                "updated_at": utcnow(),
            }
            if outcome.finished:
                values["completed_at"] = values["updated_at"]
            row = conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values)
                               .returning(*jobs.c)).one()
            if outcome.status is Status.PENDING:
                self._notify(conn, job.type)
        if outcome.status is Status.PENDING:
            self._wake_local()
        return Job.from_row(row)  # as the transition left it, even if a worker claims it now

    def retry(self, job_id: str, *, created_by: str | None) -> Job:
        """A new job with the same input, linked by ``retry_of``."""
        job = self.get(job_id)
        if job.status not in RETRYABLE:
            raise IllegalTransition(
                f"Cannot retry a job that is {job.status.value}; "
                "only failed or cancelled jobs can be retried."
            )
        return self.create(job.type, job.request, created_by=created_by, retry_of=job.id,
                           upload_id=job.upload_id)

    def _locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query.with_for_update() if self.postgres else query

    # ------------------------------------------------------------------ worker

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
        statement = _claim_statement(frozenset(excluded), frozenset(only) if only is not None else None,
                                     self.postgres)
        try:
            with self._single_statement() as conn:
                row = conn.execute(statement, self._claim_params(owner, utcnow())).one_or_none()
        except IntegrityError:
            return self._type_of_next(excluded, only)  # another worker started this type first
        return Job.from_row(row) if row is not None else None

    def _claim_params(self, owner: str, now: Any) -> dict[str, Any]:
        return {"owner": owner, "now": now, "expires": now + timedelta(seconds=self.settings.lease_seconds)}

    def _type_of_next(self, excluded: set[str], only: set[str] | None) -> str:
        candidate = _claim_candidate(frozenset(excluded), frozenset(only) if only is not None else None)
        with reading(self.engine) as conn:
            picked = conn.execute(candidate.with_only_columns(jobs.c.type)).scalar()
        return str(picked)

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
                result = conn.execute(jobs.update().where(*_FENCE).values(**values), _fence_params(lease))
                if result.rowcount == 0:
                    lost.add(lease.job_id)
        return lost

    def set_total(self, lease: Lease, total: int) -> Job:
        with self._single_statement() as conn:
            return self._fenced_update(conn, lease, total=total, updated_at=utcnow())

    def report_progress(self, lease: Lease, done_in_batch: int) -> None:
        """Items finished in the running batch (display only, not a checkpoint)."""
        with self._single_statement() as conn:
            self._fenced_update(conn, lease, batch_progress=done_in_batch, updated_at=utcnow())

    def _reader(self) -> AbstractContextManager[sa.Connection]:
        """For the API's reads: on PostgreSQL in autocommit mode, which saves
        the BEGIN and ROLLBACK round trips around every request's queries (at
        READ COMMITTED a transaction gives them no common snapshot anyway)."""
        if self.postgres:
            return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return reading(self.engine)

    def _single_statement(self) -> AbstractContextManager[sa.Connection]:
        """For operations that are one statement (atomic on its own): on
        PostgreSQL no explicit transaction, saving the BEGIN and COMMIT round
        trips that dominate small jobs. (SQLite's are in-process calls.)"""
        if self.postgres:
            return self.worker_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self.worker_engine.begin()

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
        claimed = None
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
                     "created_at": now}
                    for e in batch.errors
                ])
            values = self._progress_values(current, batch, counts, rate, now)
            boundary = None
            if batch.done:
                values.update(self._finish_values(current, batch, now))
            else:
                boundary = self._boundary_params(current, now)
            # LeaseLost rolls back the batch's writes too.
            decided = _fenced_update_row(conn, lease, values, boundary, returning=_DECIDED_AT_COMMIT)
            if claim_next and batch.done:
                claimed = conn.execute(
                    _claim_statement(frozenset(), frozenset({current.type}), self.postgres),
                    self._claim_params(lease.owner, now),
                ).one_or_none()
        # No NOTIFY here when the job ends: the worker takes the next job of
        # this type itself, and announces the type free when it stops (see
        # announce_type_free) - one round trip less per job.
        known = {field.name: getattr(current, field.name) for field in dataclasses.fields(Job)}
        committed = Job.from_mapping(known | values | decided._asdict())
        return committed, Job.from_row(claimed) if claimed is not None else None

    def _progress_values(
        self, current: Job, batch: Batch, counts: dict[str, int], rate: float | None, now: Any,
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

    def _finish_values(self, current: Job, batch: Batch, now: Any) -> dict[str, Any]:
        """The last batch: completed, whatever was requested meanwhile."""
        values: dict[str, Any] = {
            "status": Status.COMPLETED.value, "control": None, "lease_owner": None,
            "lease_expires_at": None, "processing_seconds": _run_seconds(current, now), "completed_at": now,
        }
        if current.error is not None:  # why an earlier attempt stopped: over now
            values["error"] = None
        if batch.total is None and current.total is not None:
            # A type whose plan over-counted (e.g. skipped blank lines) still ends at 100%.
            values["total"] = current.processed + batch.processed
        return values

    def _boundary_params(self, current: Job, now: Any) -> dict[str, Any]:
        """Values for the batch-boundary CASE expressions (see
        :func:`_boundary_expressions`): go on, or honour a cancel / pause."""
        return {
            "boundary_now": now, "boundary_run_seconds": _run_seconds(current, now),
            "boundary_expires": now + timedelta(seconds=self.settings.lease_seconds),
        }

    def release(self, lease: Lease) -> None:
        """Graceful stop: back to pending so any worker resumes it at once."""
        now = utcnow()
        with self.writer.begin() as conn:
            current = self._fenced_update(conn, lease, updated_at=now)
            status = Status.CANCELLED if current.control is Control.CANCEL else (
                Status.PAUSED if current.control is Control.PAUSE else Status.PENDING)
            values: dict[str, Any] = {
                "status": status.value, "control": None, "lease_owner": None,
                "lease_expires_at": None, "processing_seconds": _run_seconds(current, now),
            }
            if status is Status.CANCELLED:
                values["completed_at"] = now
            self._fenced_update(conn, lease, **values)
            self._notify(conn, current.type)

    def fail(self, lease: Lease, message: str) -> Job:
        now = utcnow()
        with self.writer.begin() as conn:
            current = self._fenced_update(conn, lease, updated_at=now)
            failed = self._fenced_update(
                conn, lease, status=Status.FAILED.value, error=message, control=None, lease_owner=None,
                lease_expires_at=None, completed_at=now, processing_seconds=_run_seconds(current, now),
            )
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
            self._fenced_update(conn, lease, error=message, updated_at=utcnow())

    def _fenced_update(self, conn: sa.Connection, lease: Lease, **values: Any) -> Job:
        return Job.from_row(_fenced_update_row(conn, lease, values))

    # ------------------------------------------------------------------ maintenance

    def reap_expired(self) -> list[str]:
        """Jobs whose worker stopped heart-beating go back to the queue (or
        fail as poison after too many crashes). Returns the affected ids."""
        now = utcnow()
        limit = self.settings.poison_limit
        affected: list[str] = []
        with self.writer.begin() as conn:
            expired = conn.execute(self._locked(
                sa.select(jobs).where(jobs.c.status == Status.PROCESSING.value,
                                      jobs.c.lease_expires_at < now)
            )).all()
            for row in expired:
                job = Job.from_row(row)
                values = _reaped_values(job, now, limit)
                conn.execute(jobs.update().where(
                    jobs.c.id == job.id, jobs.c.attempt == job.attempt,
                    jobs.c.status == Status.PROCESSING.value,
                ).values(**values))
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
            running = conn.execute(self._locked(
                sa.select(jobs).where(jobs.c.status == Status.PROCESSING.value)
            )).all()
            for row in running:
                job = Job.from_row(row)
                spent = _run_seconds(job, now)
                if spent <= job.timeout_seconds:
                    continue
                conn.execute(jobs.update().where(
                    jobs.c.id == job.id, jobs.c.attempt == job.attempt,
                    jobs.c.status == Status.PROCESSING.value,
                ).values(
                    status=Status.FAILED.value, control=None, lease_owner=None,
                    lease_expires_at=None, completed_at=now, updated_at=now,
                    processing_seconds=spent,
                    error=(f"Timed out: processing took longer than the limit of "
                           f"{_human_seconds(job.timeout_seconds)}. Work committed so far is kept; "
                           f"retry the job to continue from a fresh start."),
                ))
                failed.append(job.id)
                log.warning("job %s type=%s failed: timeout after %.0fs", job.id, job.type, spent)
                self._notify(conn, job.type)
        return failed

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
                self._purge_uploads(conn, {r.upload_id for r in ids if r.upload_id}, now)
        log.info("retention: archived %d finished jobs older than %s days", len(ids),
                 self.settings.retention_days)
        return len(ids)

    def _purge_uploads(self, conn: sa.Connection, upload_ids: set[str], now: Any) -> None:
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

    # ------------------------------------------------------------------ wake-ups

    def add_wake_listener(self, callback: Callable[[], None]) -> None:
        self._wake_listeners.append(callback)

    def _wake_local(self) -> None:
        for callback in self._wake_listeners:
            callback()

    def announce_type_free(self, type_name: str) -> None:
        """A worker stopped running ``type_name``: wake the workers that
        skipped its pending jobs because it was busy."""
        if self.postgres:
            with self._single_statement() as conn:
                self._notify(conn, type_name)

    def _notify(self, conn: sa.Connection, type_name: str) -> None:
        if self.postgres:
            conn.execute(_NOTIFY, {"type": type_name})


def _worker_engine(engine: sa.Engine, settings: Settings) -> sa.Engine:
    """Worker transactions on PostgreSQL commit without waiting for fsync.

    Safe because each of them is atomic and self-describing: if the server
    crashes, it loses at most the last fraction of a second of *whole* batches
    (data and checkpoint together), and the engine redoes them from the
    checkpoint that survived - nothing twice, nothing lost. It removes a disk
    flush per claim and per batch, which dominates small jobs. Job creation
    and control operations use the normal, fully durable engine: a job the API
    answered 202 for never disappears. (SQLite in WAL mode with
    synchronous=NORMAL already behaves this way.)

    A worker frozen mid-transaction (a paused VM, SIGSTOP) would hold its
    job's row lock forever and no lease could rescue the job, so the server
    ends such sessions after twice the lease (at least a minute).

    No pre-ping: it was a round trip on every checkout, two per job. After a
    server restart the first statement on a stale connection fails, the pool
    drops all its connections, and the worker treats it as "database
    unavailable" (the job resumes from its checkpoint) - the chaos suite
    restarts PostgreSQL mid-run to keep this honest.
    """
    if not is_postgres(engine):
        # A batch may wait out a long write of another process; the API's
        # requests give up sooner (the engine's own busy timeout) and answer 503.
        return writing(engine).execution_options(**{BUSY_TIMEOUT_OPTION: SQLITE_BUSY_TIMEOUT_MS})
    idle_ms = int(max(60.0, 2 * settings.lease_seconds) * 1000)
    return sa.create_engine(
        engine.url, pool_pre_ping=False, pool_size=5, max_overflow=10,
        connect_args={"options": f"-c synchronous_commit=off -c idle_in_transaction_session_timeout={idle_ms}"},
    )


# ---------------------------------------------------------------------- listing

_NEWEST_FIRST = (jobs.c.created_at.desc(), jobs.c.id.desc())
_RENDER_KEY = (jobs.c.id, jobs.c.updated_at, jobs.c.archived_at)


def _listing_filter(
    status: str | None, type_name: str | None, include_archived: bool, include_hidden: bool,
) -> list[sa.ColumnElement[bool]]:
    where = []
    if status:
        where.append(jobs.c.status == status)
    if type_name:
        where.append(jobs.c.type == type_name)
    elif not include_hidden:
        where.append(jobs.c.type.in_(all_job_types()))
    if not include_archived:
        where.append(jobs.c.archived_at.is_(None))
    return where


def _render_key(job_id: str, updated_at: Any, archived_at: Any) -> tuple[Any, ...]:
    return job_id, as_utc(updated_at), as_utc(archived_at)  # SQLite's datetimes come back naive


class RenderedJobs:
    """Public objects of finished jobs, by (id, updated_at, archived_at); a
    bounded LRU shared by the threads of one process."""

    def __init__(self, capacity: int = 5000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[Any, ...], data: dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = data
            if len(self._items) > self.capacity:
                self._items.popitem(last=False)


# ---------------------------------------------------------------------- hot-path statements
#
# The statements run for every job, batch and API request are built once and
# reused with bound parameters. SQLAlchemy then finds their compiled SQL by
# the statement's identity, instead of rebuilding and hashing the expression
# tree each time - about a millisecond of CPU per job, a third of the cost
# of a small job (bench/engine.py).

_GET_JOB = sa.select(jobs).where(jobs.c.id == sa.bindparam("job_id", type_=jobs.c.id.type))


def _get_job(conn: sa.Connection, job_id: str) -> Job:
    row = conn.execute(_GET_JOB, {"job_id": job_id}).one_or_none()
    if row is None:
        raise JobNotFound(f"No job with id {job_id!r}.")
    return Job.from_row(row)


def _recent_errors(conn: sa.Connection, job_ids: list[str], n: int) -> dict[str, list[dict[str, Any]]]:
    params: dict[str, Any] = {f"job_{i}": job_id for i, job_id in enumerate(job_ids)}
    params["n"] = n
    found: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(_recent_errors_statement(len(job_ids)), params):
        found.setdefault(row.job_id, []).append(_error_dict(row))
    return found


@functools.lru_cache(maxsize=256)
def _recent_errors_statement(job_count: int) -> sa.Select[Any]:
    """The last ``:n`` errors of each of ``:job_0`` .. ``:job_<count-1>``.

    One small index range per job (``ix_job_errors_job``), whatever the
    number of errors a job has: a window function over all of a page's
    errors would rank every one of them on each listing.
    """
    latest = [
        sa.select(job_errors.c.id)
        .where(job_errors.c.job_id == sa.bindparam(f"job_{i}", type_=job_errors.c.job_id.type))
        .order_by(job_errors.c.id.desc()).limit(sa.bindparam("n", type_=sa.Integer))
        .subquery().select()
        for i in range(job_count)
    ]
    ids = latest[0] if job_count == 1 else sa.union_all(*latest)
    return (sa.select(job_errors).where(job_errors.c.id.in_(ids))
            .order_by(job_errors.c.job_id, job_errors.c.id))


_NOTIFY = sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, sa.bindparam("type", type_=sa.String)))

_FENCE = (
    jobs.c.id == sa.bindparam("fence_id", type_=jobs.c.id.type),
    jobs.c.lease_owner == sa.bindparam("fence_owner", type_=jobs.c.lease_owner.type),
    jobs.c.attempt == sa.bindparam("fence_attempt", type_=jobs.c.attempt.type),
    jobs.c.status == Status.PROCESSING.value,
)


def _fence_params(lease: Lease) -> dict[str, Any]:
    return {"fence_id": lease.job_id, "fence_owner": lease.owner, "fence_attempt": lease.attempt}


# What a batch commit cannot know in advance: the CASE expressions decide it
# from the row's ``control``. Nothing else changes under a held lease, so a
# commit returns just these rather than the whole row (32 columns, JSON
# included, described and decoded on every batch).
_DECIDED_AT_COMMIT = ("status", "control", "lease_owner", "lease_expires_at", "completed_at",
                      "processing_seconds")


def _fenced_update_row(
    conn: sa.Connection, lease: Lease, values: dict[str, Any], boundary: dict[str, Any] | None = None,
    returning: tuple[str, ...] | None = None,
) -> sa.Row[Any]:
    """Set plain ``values`` (and, with ``boundary``, the batch-boundary CASE
    expressions) on the job this lease still holds; the row as written (or
    just its ``returning`` columns)."""
    statement = _fenced_update_statement(tuple(sorted(values)), boundary is not None, returning)
    params = {f"new_{name}": value for name, value in values.items()} | _fence_params(lease) | (boundary or {})
    row = conn.execute(statement, params).one_or_none()
    if row is None:
        raise LeaseLost(f"job {lease.job_id}: lease of {lease.owner} attempt {lease.attempt} lost")
    return row


@functools.cache
def _fenced_update_statement(
    columns: tuple[str, ...], at_boundary: bool, returning: tuple[str, ...] | None,
) -> sa.Update:
    values: dict[str, Any] = {
        name: sa.bindparam(f"new_{name}", type_=jobs.c[name].type) for name in columns
    }
    if at_boundary:
        values.update(_boundary_expressions())
    returned = [jobs.c[name] for name in returning] if returning else list(jobs.c)
    return jobs.update().where(*_FENCE).values(**values).returning(*returned)


def _boundary_expressions() -> dict[str, Any]:
    """Go on, or honour a cancel / pause request - decided by the row's
    ``control`` at commit time (SET expressions see the old row)."""
    control = jobs.c.control
    stopping = control.is_not(None)
    now = sa.bindparam("boundary_now", type_=jobs.c.updated_at.type)
    return {
        "status": sa.case((control == Control.CANCEL.value, Status.CANCELLED.value),
                          (control == Control.PAUSE.value, Status.PAUSED.value),
                          else_=Status.PROCESSING.value),
        "control": None,
        "lease_owner": sa.case((stopping, None), else_=jobs.c.lease_owner),
        "lease_expires_at": sa.case(
            (stopping, None), else_=sa.bindparam("boundary_expires", type_=jobs.c.lease_expires_at.type)),
        "completed_at": sa.case((control == Control.CANCEL.value, now), else_=jobs.c.completed_at),
        "processing_seconds": sa.case(
            (stopping, sa.bindparam("boundary_run_seconds", type_=jobs.c.processing_seconds.type)),
            else_=jobs.c.processing_seconds),
    }


def _claim_candidate(excluded: frozenset[str], only: frozenset[str] | None) -> sa.Select[Any]:
    running = sa.select(jobs.c.type).where(jobs.c.status == Status.PROCESSING.value)
    candidate = (
        sa.select(jobs.c.id)
        .where(jobs.c.status == Status.PENDING.value, jobs.c.type.not_in(running))
        .order_by(jobs.c.created_at, jobs.c.id).limit(1)
    )
    if excluded:
        candidate = candidate.where(jobs.c.type.not_in(sorted(excluded)))
    if only is not None and len(only) == 1:  # the hot case (a worker's next job): no IN list to expand
        candidate = candidate.where(jobs.c.type == next(iter(only)))
    elif only is not None:
        candidate = candidate.where(jobs.c.type.in_(sorted(only)))
    return candidate


@functools.lru_cache(maxsize=256)
def _claim_statement(excluded: frozenset[str], only: frozenset[str] | None, postgres: bool) -> sa.Update:
    """Take the oldest pending job of a type not running anywhere: one
    UPDATE ... RETURNING (SKIP LOCKED on PostgreSQL, so concurrent claims pass
    each other instead of queueing)."""
    candidate = _claim_candidate(excluded, only)
    if postgres:
        candidate = candidate.with_for_update(skip_locked=True)
    now = sa.bindparam("now", type_=jobs.c.updated_at.type)
    return (
        jobs.update().where(jobs.c.id == candidate.scalar_subquery(), jobs.c.status == Status.PENDING.value)
        .values(
            status=Status.PROCESSING.value, lease_owner=sa.bindparam("owner", type_=jobs.c.lease_owner.type),
            attempt=jobs.c.attempt + 1,
            lease_expires_at=sa.bindparam("expires", type_=jobs.c.lease_expires_at.type),
            started_at=sa.func.coalesce(jobs.c.started_at, now),
            run_started_at=now, updated_at=now, batch_progress=0,
        ).returning(*jobs.c)
    )


def _run_seconds(job: Job, now: Any) -> float:
    spent = job.processing_seconds
    if job.run_started_at is not None:
        spent += max((now - job.run_started_at).total_seconds(), 0.0)
    return spent


def _reaped_values(job: Job, now: Any, poison_limit: int) -> dict[str, Any]:
    crashes = job.crash_count + 1
    values: dict[str, Any] = {
        "crash_count": crashes, "lease_owner": None, "lease_expires_at": None, "updated_at": now,
        "processing_seconds": _run_seconds(job, now), "control": None,
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


def _error_dict(row: Any) -> dict[str, Any]:
    return {
        "item": row.item_ref, "item_index": row.item_index, "severity": row.severity,
        "code": row.code, "message": row.message,
    }
