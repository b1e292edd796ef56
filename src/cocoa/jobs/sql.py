"""Every hand-built statement of the jobs engine, named and described.

The operations (:mod:`cocoa.jobs.client`, :mod:`cocoa.jobs.leases`,
:mod:`cocoa.jobs.maintenance`) say *when* a statement runs; this module says
*what* it does, so the guarantees of the job lifecycle (docs/overview.md
"Lifecycle") can be checked against one page of SQL (Procrastinate's one-SQL-file habit).

The statements run for every job, batch and API request are built once and
reused with bound parameters: SQLAlchemy then finds their compiled SQL by the
statement's identity instead of rebuilding and hashing the expression tree
each time - a noticeable share of a small job's CPU (see bench/engine.py and
docs/benchmarks.md). Builders whose shape depends on their arguments are
cached per argument tuple for the same reason.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from cocoa.db.driver import driver_for
from cocoa.db.tables import job_errors, job_events, job_webhooks, jobs
from cocoa.jobs import webhooks
from cocoa.jobs.history import Event
from cocoa.jobs.model import Control, Status
from cocoa.jobs.types import all_job_types

NOTIFY_CHANNEL = "cocoa_jobs"  # LISTEN/NOTIFY channel; the payload is the job type

# ---------------------------------------------------------------------- reading one job

GET_JOB = sa.select(jobs).where(jobs.c.id == sa.bindparam("job_id", type_=jobs.c.id.type))
"""The whole row of ``:job_id``."""


@functools.lru_cache(maxsize=256)
def recent_errors(job_count: int) -> sa.Select[Any]:
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


def recent_errors_params(job_ids: list[str], n: int) -> dict[str, Any]:
    """Parameters of :func:`recent_errors` for ``job_ids``."""
    params: dict[str, Any] = {f"job_{i}": job_id for i, job_id in enumerate(job_ids)}
    params["n"] = n
    return params


# ---------------------------------------------------------------------- listing

NEWEST_FIRST = (jobs.c.created_at.desc(), jobs.c.id.desc())
"""The order of every listing; the id breaks ties of equal creation times."""

VERSION = (jobs.c.id, jobs.c.updated_at, jobs.c.archived_at)
"""What identifies one state of a job: a finished job changes only by being archived."""


def listing_filter(
    status: str | None, type_name: str | None, include_archived: bool, include_hidden: bool,
) -> list[sa.ColumnElement[bool]]:
    """The WHERE of a listing: internal types (noop) and archived jobs are
    left out unless asked for, or unless a type is named."""
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


def count(where: list[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """How many jobs match ``where``."""
    return sa.select(sa.func.count()).select_from(jobs).where(*where)


def page_versions(where: list[sa.ColumnElement[bool]], limit: int, offset: int) -> sa.Select[Any]:
    """One page's :data:`VERSION` columns, newest first; the total of all
    matches rides along (one round trip less than a separate count)."""
    return (sa.select(*VERSION, sa.func.count().over().label("total")).where(*where)
            .order_by(*NEWEST_FIRST).limit(limit).offset(offset))


# ---------------------------------------------------------------------- fencing

FENCE = (
    jobs.c.id == sa.bindparam("fence_id", type_=jobs.c.id.type),
    jobs.c.lease_owner == sa.bindparam("fence_owner", type_=jobs.c.lease_owner.type),
    jobs.c.attempt == sa.bindparam("fence_attempt", type_=jobs.c.attempt.type),
    jobs.c.status == Status.PROCESSING.value,
)
"""Every worker write's WHERE: this owner, this attempt, still processing.
A write that matches nothing means the lease is lost (see ``LeaseLost``)."""

DECIDED_AT_COMMIT = ("status", "control", "lease_owner", "lease_expires_at", "completed_at",
                     "processing_seconds", "run_started_at", "webhook_url")
"""What a batch commit cannot know in advance: the :func:`boundary_expressions`
decide it from the row's ``control``. Nothing else changes under a held lease,
so a commit returns just these rather than the whole row (every column, JSON
included, described and decoded on every batch). Plus the job's own
``webhook_url``: a commit that ends the job then knows, without a statement
of its own, whether there is a delivery to queue."""

OWN_WEBHOOK_URL = (sa.select(job_webhooks.c.url).where(job_webhooks.c.job_id == jobs.c.id)
                   .scalar_subquery().label("webhook_url"))
"""The job's own webhook URL (None if it has none), as a returned column."""

_RETURNABLE: dict[str, Any] = {column.name: column for column in jobs.c} | {"webhook_url": OWN_WEBHOOK_URL}


@functools.cache
def fenced_update(columns: tuple[str, ...], at_boundary: bool, returning: tuple[str, ...] | None) -> sa.Update:
    """Set ``columns`` (from ``:new_<column>``) on the job the fence still
    holds - with ``at_boundary``, also the batch-boundary CASE expressions -
    and return the row as written (or just its ``returning`` columns)."""
    values: dict[str, Any] = {
        name: sa.bindparam(f"new_{name}", type_=jobs.c[name].type) for name in columns
    }
    if at_boundary:
        values.update(boundary_expressions())
    returned = [_RETURNABLE[name] for name in returning] if returning else list(jobs.c)
    return jobs.update().where(*FENCE).values(**values).returning(*returned)


def boundary_expressions() -> dict[str, Any]:
    """Go on, or honour a cancel / pause request - decided by the row's
    ``control`` at commit time (SET expressions see the old row), so a
    request is honoured at this very boundary without a second round trip.
    Parameters: ``:boundary_now``, ``:boundary_expires``, ``:boundary_run_seconds``."""
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
        # Every commit banks the run's processing time so far and starts
        # counting afresh: the row's processing_seconds is current to the last
        # batch (issue 21), whether the run goes on or stops here.
        "processing_seconds": sa.bindparam("boundary_run_seconds", type_=jobs.c.processing_seconds.type),
        "run_started_at": now,
    }


# ---------------------------------------------------------------------- claiming

def claim_candidate(excluded: frozenset[str], only: frozenset[str] | None) -> sa.Select[Any]:
    """The id of the oldest pending job whose type is not processing anywhere
    (one processing job per type), of the ``only`` types and none of ``excluded``."""
    # Group rows (cocoa.jobs.groups) are never claimed: their children are.
    running = sa.select(jobs.c.type).where(jobs.c.status == Status.PROCESSING.value, jobs.c.kind == "job")
    candidate = (
        sa.select(jobs.c.id)
        .where(jobs.c.status == Status.PENDING.value, jobs.c.type.not_in(running), jobs.c.kind == "job")
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
def claim(excluded: frozenset[str], only: frozenset[str] | None, driver_name: str) -> sa.Update:
    """Take the :func:`claim_candidate` for ``:owner`` until ``:expires``
    (on the backend ``driver_name``):
    one UPDATE ... RETURNING the whole row. Where the backend has row locks
    the candidate skips locked rows, so concurrent claims pass each other
    instead of queueing; a claim that races another of the same type hits
    ``uq_jobs_one_processing_per_type`` (an IntegrityError)."""
    candidate = driver_for(driver_name).skip_locked(claim_candidate(excluded, only))
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


@functools.lru_cache(maxsize=64)
def hand_over(type_name: str, with_global_url: bool, driver_name: str) -> sa.Select[Any]:
    """A job's last commit passing its type to the next job, in one round
    trip (backends with writable CTEs): :func:`claim` of the next pending
    ``type_name`` job for ``:owner``, the history of both (``:job_id``
    completed, the next claimed) and the finished job's webhook outbox row
    (:func:`cocoa.jobs.webhooks.enqueue_statement`, ``:event``). Returns the
    claimed row, if any. Elsewhere the same writes are separate statements
    (see :meth:`cocoa.jobs.leases.WorkerLeases.commit_last_batch`)."""
    claimed = claim(frozenset(), frozenset({type_name}), driver_name).cte("claimed")
    now = sa.bindparam("now", type_=job_events.c.at.type)
    owner = sa.bindparam("owner", type_=job_events.c.actor.type)
    ended = sa.select(sa.bindparam("job_id", type_=jobs.c.id.type), now,
                      sa.literal(Event.COMPLETED.value, sa.String), owner, sa.null())
    next_claimed = sa.select(claimed.c.id, claimed.c.updated_at, sa.literal(Event.CLAIMED.value, sa.String),
                             owner, sa.literal("attempt ", sa.String) + sa.cast(claimed.c.attempt, sa.String))
    events = job_events.insert().from_select(
        ["job_id", "at", "event", "actor", "detail"], sa.union_all(ended, next_claimed)).cte("events")
    outbox = webhooks.enqueue_statement(with_global_url).cte("outbox")
    return sa.select(claimed).add_cte(events, outbox)


# ---------------------------------------------------------------------- maintenance

def attempt_update(job_id: str, attempt: int) -> sa.Update:
    """An update of one attempt of a processing job, by maintenance: it does
    nothing if the worker committed a new state or another attempt began."""
    return jobs.update().where(
        jobs.c.id == job_id, jobs.c.attempt == attempt, jobs.c.status == Status.PROCESSING.value,
    )
