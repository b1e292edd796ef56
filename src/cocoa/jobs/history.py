"""A job's history: who changed what, and when.

Every state change and control action appends one row to ``job_events`` on
the connection - hence in the transaction - of the change itself, so the
history can never claim a change that rolled back nor miss one that
committed. The operations of :mod:`cocoa.jobs.client`, :mod:`cocoa.jobs.leases`
and :mod:`cocoa.jobs.maintenance` call :func:`record`; readers call
:func:`read_history`. Events go with their job: the foreign key cascades
when a job row is deleted, and archiving a job leaves its history in place.

The actor is a plain string chosen by the caller: a user name, ``"alice
(token ci-bot)"`` for an API token, a worker id, or ``"system"`` for
maintenance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from cocoa.db.bulk import bulk_for
from cocoa.db.tables import job_events
from cocoa.jobs.model import Status, as_utc, iso, utcnow

SYSTEM = "system"  # the actor of maintenance (reaper, time limits)


class Event(StrEnum):
    CREATED = "created"
    CLAIMED = "claimed"
    PAUSE_REQUESTED = "pause_requested"
    PAUSED = "paused"
    RESUMED = "resumed"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    RELEASED = "released"
    LEASE_LOST = "lease_lost"
    RESCUED = "rescued"
    RETRIED_AS = "retried_as"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobEvent:
    at: datetime
    event: str
    actor: str | None
    detail: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"at": iso(self.at), "event": self.event, "actor": self.actor, "detail": self.detail}


_INSERT = job_events.insert()


def record(
    conn: sa.Connection, job_id: str, event: Event, actor: str | None = None,
    detail: str | None = None, *, at: datetime | None = None,
) -> None:
    """Append one event on ``conn``: commits or rolls back with the caller's change."""
    conn.execute(_INSERT, {"job_id": job_id, "at": at or utcnow(), "event": event.value,
                           "actor": actor[:255] if actor else actor, "detail": detail})


# One event to append: (job_id, event, actor, detail, at).
EventRow = tuple[str, Event, str | None, str | None, datetime]


def record_all(conn: sa.Connection, events: list[EventRow]) -> None:
    """Append several ``(job_id, event, actor, detail, at)`` events in one
    statement: a job's end and the claim of the next share one round trip.

    Written below Core (the statement compiled once, ``at`` converted by its
    column type's own bind processor, so the stored form is what Core would
    write): the history row is on every job's hot path, and Core's per-call
    parameter processing cost more than the insert itself."""
    if not events:
        return
    statement, stored_at = _insert_for(conn)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(statement, [(job_id, stored_at(at), event.value, actor[:255] if actor else actor,
                                        detail) for job_id, event, actor, detail, at in events])
    finally:
        cursor.close()


_INSERTS: dict[str, tuple[str, Callable[[datetime], Any]]] = {}


def _insert_for(conn: sa.Connection) -> tuple[str, Callable[[datetime], Any]]:
    """The driver-level insert of this dialect and the conversion of ``at``."""
    known = _INSERTS.get(conn.dialect.name)
    if known is None:
        columns = ("job_id", "at", "event", "actor", "detail")
        marks = ", ".join(bulk_for(conn).placeholder for _ in columns)
        statement = f"INSERT INTO job_events ({', '.join(columns)}) VALUES ({marks})"
        dialect = conn.dialect
        convert = job_events.c.at.type.dialect_impl(dialect).bind_processor(dialect)
        known = _INSERTS[dialect.name] = (statement, convert or _as_is)
    return known


def _as_is(value: datetime) -> Any:
    return value


def read_history(conn: sa.Connection, job_id: str) -> list[JobEvent]:
    """The events of ``job_id`` in the order they happened."""
    rows = conn.execute(sa.select(job_events.c.at, job_events.c.event, job_events.c.actor,
                                  job_events.c.detail)
                        .where(job_events.c.job_id == job_id).order_by(job_events.c.id)).all()
    return [JobEvent(as_utc(row.at) or row.at, row.event, row.actor, row.detail) for row in rows]



def control_event(action: str, before: Status, after: Status) -> tuple[Event, str | None]:
    """The event of a control action that moved a job from ``before`` to
    ``after``: at once (cancelled, paused, resumed) or requested for the
    running job's next batch boundary."""
    if action == "cancel":
        return (Event.CANCELLED, None) if after is Status.CANCELLED else (
            Event.CANCEL_REQUESTED, "takes effect at the next batch boundary")
    if action == "pause":
        return (Event.PAUSED, None) if after is Status.PAUSED else (
            Event.PAUSE_REQUESTED, "takes effect at the next batch boundary")
    if before is Status.PAUSED:
        return Event.RESUMED, None
    return Event.RESUMED, "pause request withdrawn before it took effect"
