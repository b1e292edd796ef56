"""The jobs table as the API, the CLI and the web pages see it.

Create, read, list, count, control and retry: each method is one named
operation with one transaction. Rendering jobs for a client (the public job
object) is the API layer's business (:mod:`cocoa.api.job_objects`); this
module hands out :class:`Job` records and item errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import sqlalchemy as sa

from cocoa.db.tables import job_errors, jobs
from cocoa.jobs import sql
from cocoa.jobs.model import RETRYABLE, IllegalTransition, Job, Status, apply_control, utcnow
from cocoa.jobs.store import JobNotFound, JobStore, get_job
from cocoa.jobs.types import CreateContext, JobValidationError, all_job_types, get_job_type
from cocoa.jobs.uploads import UploadPurged, open_upload, store_upload

RECENT_ERRORS = 5  # item errors shown with a job object

Version = tuple[str, Any, Any]  # (id, updated_at, archived_at), see sql.VERSION


@dataclass(frozen=True, slots=True)
class UploadSource:
    stream: IO[bytes]
    filename: str | None
    content_type: str | None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing: every job's version, the rows the caller
    asked for, and the number of all matches."""

    versions: list[Version]
    jobs: list[Job]
    total: int


class JobClient(JobStore):
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
        """Insert the row and, where the backend notifies, queue the NOTIFY for
        idle workers in the same statement (one round trip less between a
        request and its job starting; a NOTIFY is delivered at COMMIT
        wherever it is issued)."""
        now = utcnow()
        statement = jobs.insert().values(**values, created_at=now, updated_at=now).returning(*jobs.c)
        notified = self.driver.notify_column(sql.NOTIFY_CHANNEL, jobs.c.type)
        if notified is not None:
            statement = statement.returning(notified)
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
            return get_job(conn, job_id)

    def get_with_recent_errors(self, job_id: str, n: int = RECENT_ERRORS) -> tuple[Job, list[dict[str, Any]]]:
        """The job and its last ``n`` item errors on one connection: the most
        polled read of the API (watchers, the CLI) takes one pool checkout."""
        with self._reader() as conn:
            job = get_job(conn, job_id)
            recent = _recent_errors(conn, [job.id], n) if job.error_count else {}
        return job, recent.get(job.id, [])

    def list_jobs(
        self, *, status: str | None = None, type_name: str | None = None, limit: int = 50,
        offset: int = 0, include_archived: bool = False, include_hidden: bool = False,
    ) -> tuple[list[Job], int]:
        """Newest first; ``total`` counts every match, not just the page."""
        where = sql.listing_filter(status, type_name, include_archived, include_hidden)
        with self._reader() as conn:
            total: int = conn.execute(sql.count(where)).scalar_one()
            rows = conn.execute(
                sa.select(jobs).where(*where).order_by(*sql.NEWEST_FIRST).limit(limit).offset(offset)
            ).all()
        return [Job.from_row(r) for r in rows], int(total)

    def list_page(
        self, *, status: str | None = None, type_name: str | None = None, limit: int = 50,
        offset: int = 0, include_archived: bool = False, include_hidden: bool = False,
        known: Callable[[Version], bool] = lambda version: False,
    ) -> Page:
        """:meth:`list_jobs` for a caller that keeps jobs it has seen: the
        page's versions, and the rows of only those it does not ``known``
        (usually just the running jobs), on one connection."""
        where = sql.listing_filter(status, type_name, include_archived, include_hidden)
        with self._reader() as conn:
            keys = conn.execute(sql.page_versions(where, limit, offset)).all()
            # Past the end (or nothing matches), the page has no total: count on its own.
            total = keys[0].total if keys else conn.execute(sql.count(where)).scalar_one()
            versions: list[Version] = [(k.id, k.updated_at, k.archived_at) for k in keys]
            missing = [version[0] for version in versions if not known(version)]
            rows = conn.execute(sa.select(jobs).where(jobs.c.id.in_(missing))).all() if missing else []
        return Page(versions, [Job.from_row(r) for r in rows], int(total))

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

    def recent_errors_many(self, job_ids: list[str], n: int = RECENT_ERRORS) -> dict[str, list[dict[str, Any]]]:
        """The last ``n`` item errors of each job, oldest first: one query for a whole page."""
        if not job_ids:
            return {}
        with self._reader() as conn:
            return _recent_errors(conn, job_ids, n)

    # ------------------------------------------------------------------ control

    def control(self, job_id: str, action: str) -> Job:
        """cancel / pause / resume, atomically against the current state."""
        with self.writer.begin() as conn:
            row = conn.execute(self.driver.lock_rows(sa.select(jobs).where(jobs.c.id == job_id))).one_or_none()
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


def _recent_errors(conn: sa.Connection, job_ids: list[str], n: int) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(sql.recent_errors(len(job_ids)), sql.recent_errors_params(job_ids, n)):
        found.setdefault(row.job_id, []).append(_error_dict(row))
    return found


def _error_dict(row: Any) -> dict[str, Any]:
    return {
        "item": row.item_ref, "item_index": row.item_index, "severity": row.severity,
        "code": row.code, "message": row.message,
    }

