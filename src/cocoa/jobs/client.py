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
from cocoa.jobs import groups, history, sql, webhooks
from cocoa.jobs.history import Event, JobEvent
from cocoa.jobs.inputs import INPUT_KEY, describe_upload, peek
from cocoa.jobs.model import RETRYABLE, TERMINAL, IllegalTransition, Job, Status, apply_control, utcnow
from cocoa.jobs.search import JobFilter, filter_where, resolve_job_id
from cocoa.jobs.store import JobNotFound, JobStore, get_job
from cocoa.jobs.types import CreateContext, JobValidationError, all_job_types, get_job_type
from cocoa.jobs.uploads import StoredUpload, UploadPurged, UploadSink, open_upload, store_upload

RECENT_ERRORS = 5  # item errors shown with a job object

Version = tuple[str, Any, Any]  # (id, updated_at, archived_at), see sql.VERSION


@dataclass(frozen=True, slots=True)
class UploadSource:
    stream: IO[bytes]  # the data file (a compressed upload: already expanding as it is read)
    filename: str | None
    content_type: str | None
    compression: str | None = None  # "zip" | "gzip": what the client sent (uploads.compression)
    # Already in the database: stored as it streamed in (cocoa.jobs.uploads.UploadSink).
    stored: StoredUpload | None = None


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
        upload_id: str | None = None, actor: str | None = None, webhook_url: str | None = None,
    ) -> Job:
        """Validate and record a job, its upload stored in the transaction
        of its row (and its own ``webhook_url``, checked by the caller).

        Two orders:

        * a job with a file validates *first*, from the client's spooled
          upload, in a transaction that only reads - on SQLite it holds no
          lock while a large file is inspected - and then stores the file
          (unless ``upload.stored`` says it already is) and the job row in a
          second one that takes the write lock at BEGIN;
        * a job without a file inserts the row first, because its
          validation may write rows that reference it (a fixed geocoding
          selection).

        A refusal rolls everything back either way. ``actor`` (default:
        ``created_by``) is who the history says created it.
        """
        job_type = get_job_type(type_name)
        if job_type.needs_upload and upload is None and upload_id is None:
            raise JobValidationError("A file is required for this job type.", code="file_required",
                                     status=400)
        job_id = str(uuid.uuid4())
        row = {
            "id": job_id, "type": type_name, "status": Status.PENDING.value, "request": request,
            "result": {}, "timeout_seconds": self.settings.job_timeout_seconds,
            "retry_of": retry_of, "created_by": created_by,
        }
        if upload is not None or upload_id is not None:
            with self.engine.begin() as conn:  # reads only, so no lock is held while the file is inspected
                stream = upload.stream if upload is not None else self._stored_upload(upload_id)
                context = self._create_context(conn, job_id, request, stream, upload)
                params = job_type.validate(context)
                parts = groups.parts_for(job_type, context, params)  # over the per-job limit: a group
                head = peek(stream)  # input.compressed (cocoa.jobs.inputs)
            # The writes in a transaction of their own that takes SQLite's lock
            # at BEGIN and waits its turn: if validation read a row (a saved
            # mapping), a deferred transaction's first write would fail at once
            # ("database is locked") whenever anyone wrote in the meantime.
            with self.writer.begin() as conn:
                if upload is not None:
                    upload_id = upload.stored.id if upload.stored else self._store(conn, upload, created_by)
                assert upload_id is not None
                described = {INPUT_KEY: describe_upload(conn, upload_id, params, head,
                                                        upload.compression if upload else None)}
                created = Job.from_mapping(self._insert_job(conn, {**row, "params": params, "upload_id": upload_id,
                                                                   "result": described}, actor))
                webhooks.subscribe(conn, job_id, webhook_url)
                if parts:
                    created = groups.make_group(conn, created, parts)
        else:
            with self.writer.begin() as conn:
                self._insert_job(conn, {**row, "params": {}}, actor)
                webhooks.subscribe(conn, job_id, webhook_url)
                context = self._create_context(conn, job_id, request, None, None)
                params = job_type.validate(context)
                created = Job.from_row(conn.execute(jobs.update().where(jobs.c.id == job_id)
                                                    .values(params=params).returning(*jobs.c)).one())
                parts = groups.parts_for(job_type, context, params)  # a selection over the per-job limit
                if parts:
                    created = groups.make_group(conn, created, parts)
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

    def _insert_job(self, conn: sa.Connection, values: dict[str, Any], actor: str | None = None) -> dict[str, Any]:
        """Insert the row and, where the backend notifies, queue the NOTIFY for
        idle workers in the same statement (one round trip less between a
        request and its job starting; a NOTIFY is delivered at COMMIT
        wherever it is issued). The history's "created" (and, for a retry,
        the original's "retried as") are written in the same transaction."""
        now = utcnow()
        statement = jobs.insert().values(**values, created_at=now, updated_at=now).returning(*jobs.c)
        notified = self.driver.notify_column(sql.NOTIFY_CHANNEL, jobs.c.type)
        if notified is not None:
            statement = statement.returning(notified)
        data = conn.execute(statement).one()._asdict()
        data.pop("notified", None)
        actor = actor or values.get("created_by")
        retry_of = values.get("retry_of")
        history.record(conn, values["id"], Event.CREATED, actor,
                       f"retry of {retry_of}" if retry_of else None, at=now)
        if retry_of:
            history.record(conn, retry_of, Event.RETRIED_AS, actor, values["id"], at=now)
        return data

    def _store(self, conn: sa.Connection, upload: UploadSource, created_by: str | None) -> str:
        upload.stream.seek(0)
        return store_upload(
            conn, upload.stream, filename=upload.filename, content_type=upload.content_type,
            created_by=created_by, chunk_bytes=self.settings.upload_chunk_bytes,
            # A compressed upload is stored expanded, bounded by its own limit.
            max_bytes=(self.settings.max_decompressed_bytes if upload.compression
                       else self.settings.max_upload_bytes),
            compression=upload.compression,
        ).id

    def upload_sink(self, created_by: str | None, keep: Callable[[bytes], bool] | None = None) -> UploadSink:
        """A sink that stores a plain upload while it streams in (see :class:`UploadSink`)."""
        return UploadSink(self.writer, chunk_bytes=self.settings.upload_chunk_bytes,
                          max_bytes=self.settings.max_upload_bytes, created_by=created_by, keep=keep)

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
            job = get_job(conn, job_id)
        return self._synced(job) if job.is_group else job

    def _synced(self, group: Job) -> Job:
        """A group as its children make it, stored (see :func:`groups.sync`)."""
        with self.writer.begin() as conn:
            return groups.sync(conn, group)

    def _sync_open_groups(self) -> None:
        """Listings filter and cache by the stored row: bring unfinished groups up to date first."""
        with self._reader() as conn:
            open_groups = [Job.from_row(row) for row in conn.execute(sa.select(jobs).where(
                jobs.c.kind == groups.GROUP, jobs.c.status.not_in([s.value for s in TERMINAL])))]
        for group in open_groups:
            self._synced(group)

    def children(self, group_ids: list[str]) -> dict[str, list[Job]]:
        """The child jobs of each group, in item order."""
        with self._reader() as conn:
            return groups.children(conn, group_ids)

    def _error_owners(self, job: Job) -> list[str]:
        """Whose item errors a job shows: a group shows its children's."""
        if not job.is_group:
            return [job.id]
        return [child.id for child in self.children([job.id])[job.id]]

    def resolve(self, ref: str) -> str:
        """The id of the job ``ref`` names: a full id or a unique prefix of 6+
        characters (see :func:`cocoa.jobs.search.resolve_job_id`)."""
        with self._reader() as conn:
            return resolve_job_id(conn, ref)

    def get_with_recent_errors(self, job_id: str, n: int = RECENT_ERRORS) -> tuple[Job, list[dict[str, Any]]]:
        """The job and its last ``n`` item errors on one connection: the most
        polled read of the API (watchers, the CLI) takes one pool checkout."""
        with self._reader() as conn:
            job = get_job(conn, job_id)
            recent = _recent_errors(conn, [job.id], n) if job.error_count and not job.is_group else {}
        if job.is_group:
            job = self._synced(job)
            return job, self._group_recent_errors(job, n)
        return job, recent.get(job.id, [])

    def _group_recent_errors(self, group: Job, n: int) -> list[dict[str, Any]]:
        if not group.error_count:
            return []
        by_child = self.recent_errors_many(self._error_owners(group), n)
        return [error for errors in by_child.values() for error in errors][-n:]

    def list_jobs(
        self, *, status: str | None = None, type_name: str | None = None, limit: int = 50,
        offset: int = 0, include_archived: bool = False, include_hidden: bool = False,
        spec: JobFilter | None = None,
    ) -> tuple[list[Job], int]:
        """Newest first; ``total`` counts every match, not just the page.
        ``spec`` (several statuses, creator, window, search) replaces the
        simple filters when given."""
        where = (filter_where(spec) if spec is not None
                 else sql.listing_filter(status, type_name, include_archived, include_hidden))
        where = [*where, jobs.c.parent_id.is_(None)]  # a group's children show under it
        self._sync_open_groups()
        with self._reader() as conn:
            total: int = conn.execute(sql.count(where)).scalar_one()
            rows = conn.execute(
                sa.select(jobs).where(*where).order_by(*sql.NEWEST_FIRST).limit(limit).offset(offset)
            ).all()
        return [Job.from_row(r) for r in rows], int(total)

    def list_page(
        self, *, status: str | None = None, type_name: str | None = None, limit: int = 50,
        offset: int = 0, include_archived: bool = False, include_hidden: bool = False,
        known: Callable[[Version], bool] = lambda version: False, spec: JobFilter | None = None,
    ) -> Page:
        """:meth:`list_jobs` for a caller that keeps jobs it has seen: the
        page's versions, and the rows of only those it does not ``known``
        (usually just the running jobs), on one connection."""
        where = (filter_where(spec) if spec is not None
                 else sql.listing_filter(status, type_name, include_archived, include_hidden))
        where = [*where, jobs.c.parent_id.is_(None)]  # a group's children show under it
        self._sync_open_groups()
        with self._reader() as conn:
            keys = conn.execute(sql.page_versions(where, limit, offset)).all()
            # Past the end (or nothing matches), the page has no total: count on its own.
            total = keys[0].total if keys else conn.execute(sql.count(where)).scalar_one()
            versions: list[Version] = [(k.id, k.updated_at, k.archived_at) for k in keys]
            missing = [version[0] for version in versions if not known(version)]
            rows = conn.execute(sa.select(jobs).where(jobs.c.id.in_(missing))).all() if missing else []
        return Page(versions, [Job.from_row(r) for r in rows], int(total))

    def counts_by_status(self, include_hidden: bool = False) -> dict[str, int]:
        where = [jobs.c.archived_at.is_(None), jobs.c.parent_id.is_(None)]  # a group counts once
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
        owners = self._error_owners(self.get(job_id))  # 404 for unknown jobs rather than an empty list
        with self._reader() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(job_errors).where(job_errors.c.job_id.in_(owners))
            ).scalar_one()
            rows = conn.execute(
                sa.select(job_errors).where(job_errors.c.job_id.in_(owners))
                .order_by(job_errors.c.id).limit(limit).offset(offset)
            ).all()
        return [_error_dict(r) for r in rows], int(total)

    def recent_errors_many(self, job_ids: list[str], n: int = RECENT_ERRORS) -> dict[str, list[dict[str, Any]]]:
        """The last ``n`` item errors of each job, oldest first: one query for a whole page."""
        if not job_ids:
            return {}
        with self._reader() as conn:
            return _recent_errors(conn, job_ids, n)

    def history(self, job_id: str) -> list[JobEvent]:
        """Who did what to the job, oldest first (404 for an unknown job)."""
        with self._reader() as conn:
            get_job(conn, job_id)
            return history.read_history(conn, job_id)

    # ------------------------------------------------------------------ control

    def control(self, job_id: str, action: str, *, actor: str | None = None) -> Job:
        """cancel / pause / resume, atomically against the current state; the
        history records it, by ``actor``, in the same transaction."""
        with self.writer.begin() as conn:
            row = conn.execute(self.driver.lock_rows(sa.select(jobs).where(jobs.c.id == job_id))).one_or_none()
            if row is None:
                raise JobNotFound(f"No job with id {job_id!r}.")
            job = Job.from_row(row)
            if job.is_group:
                return self._control_group(conn, job, action, actor)
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
            event, detail = history.control_event(action, job.status, outcome.status)
            history.record(conn, job_id, event, actor, detail, at=values["updated_at"])
            webhooks.enqueue(conn, job_id, outcome.status.value, self.settings)  # if cancelled now
            if outcome.status is Status.PENDING:
                self._notify(conn, job.type)
        if outcome.status is Status.PENDING:
            self._wake_local()
        return Job.from_row(row)  # as the transition left it, even if a worker claims it now

    def _control_group(self, conn: sa.Connection, group: Job, action: str, actor: str | None) -> Job:
        """The action on every child it applies to (see :func:`groups.control`)."""
        wake = groups.control(conn, group, action)
        for type_name in wake:
            self._notify(conn, type_name)
        synced = groups.sync(conn, group)
        event, detail = history.control_event(action, group.status, synced.status)
        history.record(conn, group.id, event, actor, detail or "applied to the group's jobs", at=utcnow())
        if wake:
            self._wake_local()
        return synced

    def retry(self, job_id: str, *, created_by: str | None, actor: str | None = None) -> Job:
        """A new job with the same input, linked by ``retry_of`` (the
        original's history says "retried as" it)."""
        job = self.get(job_id)
        if job.is_group:
            return self._retry_group(job, created_by, actor)
        if job.parent_id is not None:  # on its own it would re-read the whole file as a new group
            raise IllegalTransition(
                f"This job is one part of the group {job.parent_id}; retry the group, which re-runs "
                "only the parts that did not complete.")
        if job.status not in RETRYABLE:
            raise IllegalTransition(
                f"Cannot retry a job that is {job.status.value}; "
                "only failed or cancelled jobs can be retried."
            )
        with self._reader() as conn:
            webhook_url = webhooks.job_url(conn, job.id)  # a retry tells the same receiver
        return self.create(job.type, job.request, created_by=created_by, retry_of=job.id,
                           upload_id=job.upload_id, actor=actor, webhook_url=webhook_url)


    def _retry_group(self, group: Job, created_by: str | None, actor: str | None) -> Job:
        """A new group over the same stored file whose children re-run only
        the parts that did not complete (in item order, after nothing else)."""
        with self.writer.begin() as conn:
            parts = groups.retry_parts(conn, group)
            new_id = str(uuid.uuid4())
            inserted = Job.from_mapping(self._insert_job(conn, {
                "id": new_id, "type": group.type, "status": Status.PENDING.value,
                "request": group.request, "params": group.params,
                "result": {key: value for key, value in group.result.items() if key == "input"},
                "timeout_seconds": group.timeout_seconds, "upload_id": group.upload_id,
                "retry_of": group.id, "created_by": created_by,
            }, actor))
            created = groups.make_group(conn, inserted, parts)
        self._wake_local()
        return created


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

