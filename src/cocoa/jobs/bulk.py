"""Acting on many jobs at once: cancel a selection, retry a filter's failures.

Each action has a dry run that answers how many jobs it would touch, so a
page can ask "Retry 12 failed jobs?" before doing it. Decisions:

* Every job is acted on by the same single-job operation (and transaction)
  the API's ``/cancel`` and ``/retry`` use, so the state machine, the history
  and the wake-ups stay in one place; one job refusing (it finished
  meanwhile) is reported and the others go on.
* Bulk retry skips failed jobs that already have a retry: the filter still
  matches them after a retry, and pressing the button twice must not queue
  every job twice. It is capped at :data:`MAX_BULK` jobs per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from cocoa.db.tables import jobs
from cocoa.jobs.client import JobClient
from cocoa.jobs.model import RETRYABLE, IllegalTransition, Status, apply_control
from cocoa.jobs.search import AmbiguousJobId, JobFilter, filter_where
from cocoa.jobs.store import JobNotFound
from cocoa.jobs.types import JobValidationError

MAX_BULK = 1000  # jobs one bulk call may act on
RETRY_STATUSES = tuple(sorted(s.value for s in RETRYABLE))


@dataclass(slots=True)
class BulkOutcome:
    """What a bulk action did (or, dry, would do)."""

    dry_run: bool
    matched: list[str] = field(default_factory=list)  # ids the action applies to
    done: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self, done_key: str) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "count": len(self.matched), "job_ids": self.matched,
                done_key: self.done, "skipped": self.skipped}


def bulk_cancel(client: JobClient, refs: list[str], *, actor: str | None, dry_run: bool) -> BulkOutcome:
    """Cancel the jobs ``refs`` name (ids or unique prefixes)."""
    outcome = BulkOutcome(dry_run)
    seen: set[str] = set()
    for ref in refs:
        try:
            job_id = client.resolve(ref)
        except (JobNotFound, AmbiguousJobId) as exc:
            outcome.skipped.append({"job_id": ref, "reason": str(exc)})
            continue
        if job_id in seen:
            continue
        seen.add(job_id)
        try:
            if dry_run:
                job = client.get(job_id)
                apply_control("cancel", job.status, job.control)  # raises if not cancellable now
            else:
                client.control(job_id, "cancel", actor=actor)
        except (JobNotFound, IllegalTransition) as exc:
            outcome.skipped.append({"job_id": job_id, "reason": str(exc)})
            continue
        outcome.matched.append(job_id)
        if not dry_run:
            outcome.done.append({"job_id": job_id})
    return outcome


def retry_candidates(client: JobClient, spec: JobFilter, limit: int = MAX_BULK) -> list[str]:
    """Failed (or cancelled) jobs matching ``spec`` that have no retry yet, oldest first."""
    statuses = tuple(s for s in spec.statuses if s in RETRY_STATUSES) or (Status.FAILED.value,)
    retries = jobs.alias("retries")
    has_retry = sa.exists().where(retries.c.retry_of == jobs.c.id)
    query = (sa.select(jobs.c.id).where(*filter_where(spec.with_statuses(*statuses)), ~has_retry)
             .order_by(jobs.c.created_at, jobs.c.id).limit(limit))
    with client.driver.autocommit(client.engine) as conn:
        found: list[Any] = list(conn.execute(query).scalars().all())
    return [str(value) for value in found]


def bulk_retry(client: JobClient, spec: JobFilter, *, created_by: str | None, dry_run: bool) -> BulkOutcome:
    """Retry every failed job matching ``spec`` (see :func:`retry_candidates`)."""
    outcome = BulkOutcome(dry_run, matched=retry_candidates(client, spec))
    if dry_run:
        return outcome
    for job_id in outcome.matched:
        try:
            new = client.retry(job_id, created_by=created_by, actor=created_by)
        except (JobNotFound, IllegalTransition, JobValidationError) as exc:
            outcome.skipped.append({"job_id": job_id, "reason": str(exc)})
            continue
        outcome.done.append({"job_id": job_id, "new_job_id": new.id})
    return outcome


def check_retry_statuses(statuses: tuple[str, ...]) -> None:
    """Only failed or cancelled jobs can be retried: say so rather than match nothing."""
    wrong = [s for s in statuses if s not in RETRY_STATUSES]
    if wrong:
        raise ValueError(f"Bulk retry takes only the statuses {', '.join(RETRY_STATUSES)} "
                         f"(got {', '.join(map(repr, wrong))}); leave status out for failed jobs.")
