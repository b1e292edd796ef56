"""Job groups: one request over the per-job item limit, run as several jobs.

A job type that can cut its input into contiguous item ranges declares
``split`` (:class:`Splittable`). When validation finds more items than
``max_items_per_job``, the job row created for the request becomes a
**group** (``kind = 'group'``) and one child job per range is inserted with
``parent_id`` pointing at it, over the same stored upload and in item order
(their ``created_at`` increases, so the oldest-first claim runs them one
after another under the one-job-per-type rule).

A group row is never claimed (see :func:`cocoa.jobs.sql.claim_candidate`).
What a client sees of it is *derived* from its children (:func:`derive`):
summed progress and counters, the running child's rate, a status that says
what the children are doing. :func:`sync` writes the derived state into the
group row so that listings, filters and caches see it too; the client calls
it whenever it reads or controls a group.

Nothing here knows what the items are.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa

from cocoa.db.tables import jobs
from cocoa.jobs.model import (
    RETRYABLE,
    IllegalTransition,
    Job,
    Status,
    apply_control,
    utcnow,
)
from cocoa.jobs.types import CreateContext, JobValidationError, Params

GROUP = "group"
LAST_IN_GROUP = "last_in_group"  # in a child's params


@dataclass(frozen=True, slots=True)
class Part:
    """One child's share of the input: its params and item range (1-based, inclusive)."""

    params: Params
    first_item: int
    last_item: int

    @property
    def items(self) -> int:
        return self.last_item - self.first_item + 1


@runtime_checkable
class Splittable(Protocol):
    """A job type whose input can be cut into contiguous item ranges."""

    def split(self, ctx: CreateContext, params: Params, limit: int) -> list[Part] | None:
        """The parts of at most ``limit`` items each, or None when the
        validated ``params`` fit in one job."""
        ...


def parts_for(job_type: object, ctx: CreateContext, params: Params) -> list[Part] | None:
    """The children a request needs, or None for a plain job."""
    if not isinstance(job_type, Splittable):
        return None
    parts = job_type.split(ctx, params, ctx.settings.max_items_per_job)
    return parts if parts and len(parts) > 1 else None


def make_group(conn: sa.Connection, group: Job, parts: list[Part]) -> Job:
    """Turn the just-inserted ``group`` into a group and insert its children
    (same transaction: all or nothing)."""
    total = sum(part.items for part in parts)
    row = conn.execute(jobs.update().where(jobs.c.id == group.id)
                       .values(kind=GROUP, total=total).returning(*jobs.c)).one()
    insert_children(conn, Job.from_row(row), parts)
    return Job.from_row(row)


def insert_children(conn: sa.Connection, group: Job, parts: list[Part]) -> None:
    base = utcnow()
    conn.execute(jobs.insert(), [
        {"id": str(uuid.uuid4()), "type": group.type, "status": Status.PENDING.value,
         "request": group.request,
         # last_in_group: work a type does once after all parts (parcel linking) belongs to this one.
         "params": {**part.params, "item_range": [part.first_item, part.last_item],
                    LAST_IN_GROUP: i == len(parts) - 1},
         "result": _inherited_result(group.result), "timeout_seconds": group.timeout_seconds,
         "upload_id": group.upload_id, "created_by": group.created_by, "total": part.items,
         "kind": "job", "parent_id": group.id,
         # Strictly increasing: the claim takes the oldest first, so children run in item order.
         "created_at": base + timedelta(microseconds=i), "updated_at": base}
        for i, part in enumerate(parts)
    ])


def _inherited_result(result: dict[str, Any]) -> dict[str, Any]:
    """What a child shows of the group's result from the start (the input's description)."""
    return {key: value for key, value in result.items() if key == "input"}


# --------------------------------------------------------------------------- reading


def children(conn: sa.Connection, group_ids: list[str]) -> dict[str, list[Job]]:
    """The children of each group, in item order."""
    found: dict[str, list[Job]] = {group_id: [] for group_id in group_ids}
    if not group_ids:
        return found
    rows = conn.execute(sa.select(jobs).where(jobs.c.parent_id.in_(group_ids))
                        .order_by(jobs.c.created_at, jobs.c.id)).all()
    for row in rows:
        child = Job.from_row(row)
        found[str(child.parent_id)].append(child)
    return found


def derived_status(kids: list[Job]) -> Status:
    """What the children are doing, as one status: running if one runs;
    otherwise queued while any waits; paused while any is parked; done when
    all are - completed only if every child completed."""
    statuses = {child.status for child in kids}
    for status in (Status.PROCESSING, Status.PENDING, Status.PAUSED):
        if status in statuses:
            return status
    if statuses <= {Status.COMPLETED}:
        return Status.COMPLETED
    return Status.FAILED if Status.FAILED in statuses else Status.CANCELLED


def derive(group: Job, kids: list[Job]) -> Job:
    """The group as its children make it: the job object of a group."""
    if not kids:
        return group
    status = derived_status(kids)
    running = next((child for child in kids if child.status is Status.PROCESSING), None)
    started = [child.started_at for child in kids if child.started_at is not None]
    failed_child = next((child for child in kids if child.status is Status.FAILED), None)
    return dataclasses.replace(
        group, status=status,
        total=sum(child.total or 0 for child in kids),
        processed=sum(child.processed for child in kids),
        batch_progress=running.batch_progress if running else 0,
        succeeded=sum(child.succeeded for child in kids),
        failed=sum(child.failed for child in kids),
        error_count=sum(child.error_count for child in kids),
        rate_per_second=running.rate_per_second if running else None,
        phase=running.phase if running else None,
        control=running.control if running else None,
        started_at=min(started) if started else None,
        completed_at=max(child.completed_at or child.updated_at for child in kids)
        if status in (Status.COMPLETED, Status.FAILED, Status.CANCELLED) else None,
        processing_seconds=sum(child.processing_seconds for child in kids),
        error=(f"Part {kids.index(failed_child) + 1} of {len(kids)} failed: {failed_child.error}"
               if failed_child and failed_child.error else None),
        result=_summed_results(group.result, kids),
    )


def _summed_results(base: dict[str, Any], kids: list[Job]) -> dict[str, Any]:
    """Counters add up over the children; other fields come from the latest
    child that has them. Of the group's own result only the input's
    description counts (the rest is what an earlier sync derived)."""
    result = _inherited_result(base)
    for child in kids:
        for key, value in child.result.items():
            if key == "input":
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                previous = result.get(key, 0)
                result[key] = (previous if isinstance(previous, int) else 0) + value
            else:
                result[key] = value
    return result


_SYNCED = ("status", "total", "processed", "succeeded", "failed", "error_count", "started_at",
           "completed_at", "error", "result", "processing_seconds")


def sync(conn: sa.Connection, group: Job) -> Job:
    """Read the children, derive the group, store what changed in its row
    (so listings filter and cache it correctly); the derived group."""
    kids = children(conn, [group.id])[group.id]
    derived = derive(group, kids)
    changed = {name: getattr(derived, name) for name in _SYNCED
               if getattr(derived, name) != getattr(group, name)}
    if "status" in changed:
        changed["status"] = derived.status.value
    if changed:
        conn.execute(jobs.update().where(jobs.c.id == group.id).values(**changed, updated_at=utcnow()))
        derived = dataclasses.replace(derived, updated_at=utcnow())
    return derived


# --------------------------------------------------------------------------- control


def control(conn: sa.Connection, group: Job, action: str) -> list[str]:
    """cancel / pause / resume every child the action applies to; the types
    to wake (children back in the queue). 409 when it applies to none."""
    kids = children(conn, [group.id])[group.id]
    touched = 0
    for child in kids:
        try:
            outcome = apply_control(action, child.status, child.control)
        except IllegalTransition:
            continue
        values: dict[str, Any] = {"status": outcome.status.value,
                                  "control": outcome.control.value if outcome.control else None,
                                  "updated_at": utcnow()}
        if outcome.finished:
            values["completed_at"] = values["updated_at"]
        touched += conn.execute(jobs.update().where(jobs.c.id == child.id,
                                                    jobs.c.status == child.status.value)
                                .values(**values)).rowcount
    if not touched:
        status = derived_status(kids).value if kids else group.status.value
        raise IllegalTransition(f"Cannot {action} this group: none of its {len(kids)} jobs is in a "
                                f"state that allows it (the group is {status}).")
    return [group.type] if action == "resume" else []


def retry_parts(conn: sa.Connection, group: Job) -> list[Part]:
    """The parts of the children that did not complete: what a retry re-runs."""
    kids = children(conn, [group.id])[group.id]
    status = derived_status(kids)
    if status not in RETRYABLE:
        raise IllegalTransition(f"Cannot retry a group that is {status.value}; only failed or "
                                "cancelled groups can be retried.")
    parts = []
    for child in kids:
        if child.status is Status.COMPLETED:
            continue
        first, last = child.params.get("item_range") or [1, child.total or 1]
        params = {key: value for key, value in child.params.items()
                  if key not in ("item_range", LAST_IN_GROUP)}
        parts.append(Part(params, int(first), int(last)))
    if not parts:
        raise JobValidationError("Every job of this group completed; there is nothing to retry.",
                                 code="nothing_to_retry", status=409)
    return parts


def item_range(job: Job) -> list[int] | None:
    value = job.params.get("item_range")
    return [int(value[0]), int(value[1])] if isinstance(value, list) and len(value) == 2 else None
