"""The public job object (docs/api.md), as the API, the web pages and the CLI show it.

The engine hands out :class:`~cocoa.jobs.model.Job` records; what a client
sees of one - field names, ISO timestamps, progress, the last few item
errors - is decided here, once. A finished job never changes again except
for being archived, so its object is kept per process under its version
(id, updated_at, archived_at): a listing then reads the page's versions and
only the rows it has not rendered yet - usually just the running jobs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from cocoa.jobs.client import RECENT_ERRORS, JobClient, Version
from cocoa.jobs.groups import item_range
from cocoa.jobs.inputs import public_input, public_result
from cocoa.jobs.model import Job, as_utc, iso, utcnow
from cocoa.jobs.search import JobFilter


def public_dict(job: Job, recent_errors: list[dict[str, Any]] | None = None,
                children: list[Job] | None = None) -> dict[str, Any]:
    """The public job object of the HTTP API (``JobOut`` in docs/api.md);
    a group's (``kind: "group"``) lists its ``children``."""
    now = utcnow()
    elapsed = job.elapsed_seconds(now)
    return {
        "kind": job.kind, "parent_id": job.parent_id,
        "item_range": item_range(job),
        "children": [child_summary(child) for child in children] if job.is_group and children else [],
        "id": job.id, "type": job.type, "status": job.status.value,
        "requested_action": job.control.value if job.control else None,
        "progress": job.progress(),
        "created_at": iso(job.created_at), "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at), "updated_at": iso(job.updated_at),
        "archived_at": iso(job.archived_at),
        "elapsed_seconds": elapsed, "processing_seconds": job.processing_seconds_now(now),
        "duration_seconds": elapsed,  # deprecated alias of elapsed_seconds
        "created_by": job.created_by, "input": public_input(job.params, job.result),
        "params": job.params, "result": public_result(job.result),
        "error": job.error, "error_count": job.error_count,
        "recent_errors": recent_errors or [],
        "attempt": job.attempt, "retry_of": job.retry_of,
    }


def child_summary(child: Job) -> dict[str, Any]:
    """A child as its group's object lists it."""
    return {"id": child.id, "status": child.status.value, "progress": child.progress(),
            "item_range": item_range(child), "error": child.error, "error_count": child.error_count,
            "input": public_input(child.params, child.result)}  # which file it is a part of


class JobObjects:
    """Public job objects read through ``jobs``, with a cache of finished ones."""

    def __init__(self, jobs: JobClient, capacity: int = 5000) -> None:
        self.jobs = jobs
        self._rendered = RenderedJobs(capacity)

    def get(self, job_id: str) -> Job:
        return self.jobs.get(job_id)

    def job_object(self, job_id: str) -> dict[str, Any]:
        """The object of ``job_id``, read on one connection (the most polled read)."""
        job, recent = self.jobs.get_with_recent_errors(job_id, RECENT_ERRORS)
        kids = self.jobs.children([job.id])[job.id] if job.is_group else None
        return public_dict(job, recent, kids)

    def job_dict(self, job: Job) -> dict[str, Any]:
        return self.job_dicts([job])[0]

    def job_dicts(self, page: list[Job]) -> list[dict[str, Any]]:
        """Objects with their recent errors, read in one query for the whole
        page rather than one per job."""
        recent = self.jobs.recent_errors_many([j.id for j in page if j.error_count], RECENT_ERRORS)
        kids = self.jobs.children([j.id for j in page if j.is_group])
        return [public_dict(j, recent.get(j.id, []), kids.get(j.id)) for j in page]

    def list_job_dicts(
        self, *, status: str | None = None, type_name: str | None = None, limit: int = 50,
        offset: int = 0, include_archived: bool = False, include_hidden: bool = False,
        spec: JobFilter | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """:meth:`JobClient.list_jobs` as public job objects (the API's listing)."""
        rendered: dict[str, dict[str, Any]] = {}  # taken from the cache once: it may evict meanwhile

        def known(version: Version) -> bool:
            data = self._rendered.get(_render_key(version))
            if data is not None:
                rendered[version[0]] = data
            return data is not None

        page = self.jobs.list_page(
            status=status, type_name=type_name, limit=limit, offset=offset,
            include_archived=include_archived, include_hidden=include_hidden, known=known, spec=spec,
        )
        for job, data in zip(page.jobs, self.job_dicts(page.jobs), strict=True):
            rendered[job.id] = data
            if job.is_terminal:
                self._rendered.put(_render_key((job.id, job.updated_at, job.archived_at)), data)
        return [rendered[version[0]] for version in page.versions if version[0] in rendered], page.total


def _render_key(version: Version) -> tuple[Any, ...]:
    job_id, updated_at, archived_at = version
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
