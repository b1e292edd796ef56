"""Plain data: job states, the legal control transitions, and the Job record.

Nothing here touches the database (:mod:`cocoa.jobs.manager` does) or
decides what a client sees (:mod:`cocoa.api.job_objects` does). Keeping the
state machine as data makes it testable on its own (see the Hypothesis test).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class Control(StrEnum):
    """Requests a running job honours at its next batch boundary."""

    CANCEL = "cancel"
    PAUSE = "pause"


class IllegalTransition(Exception):
    """A control operation the job's state does not allow (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    status: Status
    control: Control | None
    finished: bool = False  # sets completed_at


def apply_control(action: str, status: Status, control: Control | None) -> ControlOutcome:
    """The whole control state machine, in one table-like function.

    * cancel: pending/paused jobs stop at once; a processing job is asked to
      stop at its next batch boundary.
    * pause: a pending job is parked at once; a processing job parks at its next
      batch boundary.
    * resume: a paused job goes back to the queue; a pause still waiting for
      its batch boundary is withdrawn.
    """
    if action == "cancel":
        if status in (Status.PENDING, Status.PAUSED):
            return ControlOutcome(Status.CANCELLED, None, finished=True)
        if status is Status.PROCESSING:
            return ControlOutcome(Status.PROCESSING, Control.CANCEL)
    elif action == "pause":
        if status is Status.PENDING:
            return ControlOutcome(Status.PAUSED, None)
        if status is Status.PROCESSING and control is None:
            return ControlOutcome(Status.PROCESSING, Control.PAUSE)
    elif action == "resume":
        if status is Status.PAUSED:
            return ControlOutcome(Status.PENDING, None)
        if status is Status.PROCESSING and control is Control.PAUSE:
            return ControlOutcome(Status.PROCESSING, None)
    else:
        raise ValueError(f"unknown control action {action!r}")
    raise IllegalTransition(_refusal(action, status, control))


def _refusal(action: str, status: Status, control: Control | None) -> str:
    if control is Control.CANCEL:
        return f"Cannot {action}: the job is already being cancelled."
    if action == "pause" and control is Control.PAUSE:
        return "Cannot pause: a pause is already requested; it takes effect after the current batch."
    if action == "resume":
        return f"Cannot resume a job that is {status.value}; only paused jobs can be resumed."
    return f"Cannot {action} a job that is {status.value}."


RETRYABLE = frozenset({Status.FAILED, Status.CANCELLED})


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every timestamp we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def utcnow() -> datetime:
    return datetime.now(UTC)


_TIMESTAMPS = ("lease_expires_at", "created_at", "started_at", "run_started_at", "completed_at",
               "updated_at", "archived_at")


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    type: str
    status: Status
    request: dict[str, Any]
    params: dict[str, Any]
    result: dict[str, Any]
    checkpoint: dict[str, Any] | None
    error: str | None
    phase: str | None
    total: int | None
    processed: int
    batch_progress: int
    succeeded: int
    failed: int
    error_count: int
    rate_per_second: float | None
    attempt: int
    crash_count: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    control: Control | None
    timeout_seconds: float
    processing_seconds: float
    upload_id: str | None
    retry_of: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    run_started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    archived_at: datetime | None
    kind: str = "job"  # or "group" (cocoa.jobs.groups)
    parent_id: str | None = None  # the group a child job belongs to

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls.from_mapping(row._asdict())

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Job:
        """From column values: a row, or a known job plus what changed."""
        data["status"] = Status(data["status"])
        data["control"] = Control(data["control"]) if data["control"] else None
        for name in _TIMESTAMPS:
            value = data[name]
            if value is not None and value.tzinfo is None:  # SQLite: naive, but UTC
                data[name] = value.replace(tzinfo=UTC)
        return cls(**data)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def progress(self) -> dict[str, Any]:
        total = self.total
        processed = self.processed + (self.batch_progress if self.status is Status.PROCESSING else 0)
        if total is not None:
            processed = min(processed, total)
        if self.status is Status.COMPLETED:
            percent = 100.0
        elif total:
            # 100 is reserved for "completed": a job at its last item is not done.
            percent = min(round(100.0 * processed / total, 1), 99.9)
        else:
            percent = 0.0
        running = self.status is Status.PROCESSING
        rate = self.rate_per_second if running else None
        eta = None
        if rate and total is not None and rate > 0:
            eta = round(max(total - processed, 0) / rate, 1)
        return {
            "processed": processed, "total": total, "percent": percent,
            "succeeded": self.succeeded, "failed": self.failed,
            "rate_per_second": round(rate, 1) if rate else None, "eta_seconds": eta,
            "phase": self.phase,
        }

    def elapsed_seconds(self, now: datetime | None = None) -> float | None:
        """Wall-clock time from the first start to the end (or now): paused
        and queued time included - what a person waiting for the job sees."""
        if not self.started_at:
            return None
        end = self.completed_at or now or utcnow()
        return round(max((end - self.started_at).total_seconds(), 0.0), 3)

    def duration_seconds(self) -> float | None:
        """Deprecated name of :meth:`elapsed_seconds` (the API keeps the field)."""
        return self.elapsed_seconds()

    def processing_seconds_now(self, now: datetime | None = None) -> float:
        """Time spent processing: what the row has banked (``processing_seconds``,
        updated at every batch commit and when a lease ends) plus the time
        since (``run_started_at``) while a run goes on. Paused time and time pending between leases are left out,
        like the timeout and the metrics leave them out."""
        spent = self.processing_seconds
        if self.status is Status.PROCESSING and self.run_started_at is not None:
            spent += max(((now or utcnow()) - self.run_started_at).total_seconds(), 0.0)
        return round(spent, 3)
