"""The contract between the engine and a job type, and the registry.

A job type is one small class. The engine calls it in three places:

* ``validate`` at the API, inside the job-creation transaction. It turns the
  raw request into JSON params (or raises :class:`JobValidationError`, which
  rolls the whole creation back and becomes a 4xx) and may write rows that
  must exist from the first moment (e.g. the fixed geocoding selection).
* ``plan`` once, when a worker first starts the job: how many items in all.
* ``run_batch`` repeatedly. It reads and computes *outside* any transaction
  (slow I/O such as HTTP belongs here) and returns a :class:`Batch`. The
  engine then opens one transaction, checks the worker still holds the lease,
  calls ``Batch.write`` and stores the new checkpoint, counters and item
  errors, and commits - all or nothing.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, ClassVar, Protocol

import sqlalchemy as sa

if TYPE_CHECKING:
    from cocoa.config import Settings

log = logging.getLogger(__name__)


def tune_garbage_collector() -> None:
    """For a process that runs batches (a worker, a helper, a benchmark).

    Batches allocate many short-lived objects (one dict and tuple per row);
    with the default thresholds the collector re-scans the long-lived heap
    every few hundred allocations, a sizeable share of an import's CPU
    (docs/benchmarks.md).
    Freezing what exists at start and collecting young objects less often
    keeps memory bounded (batches are bounded) and the CPU for the work."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)

Params = dict[str, Any]
Checkpoint = dict[str, Any]


class JobValidationError(Exception):
    """A request the job type refuses; the API answers with ``status``:
    422 for readable requests with invalid values (the default), 400 only
    when the request cannot be read (no file)."""

    def __init__(
        self, message: str, *, code: str = "invalid_request", status: int = 422,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details


class JobFailed(Exception):
    """A job-level failure (unreadable file, provider outage): the job fails
    with this message after everything committed so far is kept."""


@dataclass(frozen=True, slots=True)
class ItemError:
    """One bad row, feature or address. Recorded, never fatal."""

    item_ref: str  # what a person looks for: "row 17", "feature 3", "household 42"
    code: str  # machine-readable: "missing_id", "bad_date", "ragged_row", ...
    message: str  # says what is wrong and how to fix it
    item_index: int | None = None
    severity: str = "error"  # or "warning": recorded but the item was still used
    # The item's text as in the input (a file's line, decoded): set for
    # rejected items only, so they can be downloaded, fixed and imported again.
    original: str | None = None


@dataclass(slots=True)
class Batch:
    """What one ``run_batch`` call did; committed atomically by the engine."""

    checkpoint: Checkpoint
    processed: int
    succeeded: int = 0
    failed: int = 0
    errors: list[ItemError] = field(default_factory=list)
    done: bool = False
    # Runs inside the batch transaction; may return counters to add to the result.
    write: Callable[[sa.Connection], dict[str, int] | None] | None = None
    counts: dict[str, int] = field(default_factory=dict)  # added to job.result
    phase: str | None = None  # shown with progress, e.g. "linking"
    total: int | None = None  # replaces the planned total (e.g. a phase adds work)
    result: dict[str, Any] | None = None  # non-counter result fields to merge


@dataclass(slots=True)
class CreateContext:
    """What ``validate`` may use: the creation transaction and the upload."""

    conn: sa.Connection
    job_id: str
    params: dict[str, Any]
    settings: Settings
    upload: IO[bytes] | None = None  # seekable, the stored upload
    upload_filename: str | None = None


@dataclass(slots=True)
class RunContext:
    """What ``plan`` and ``run_batch`` may use while the job runs."""

    job_id: str
    params: Params
    settings: Settings
    engine: sa.Engine
    batch_size: int
    upload_id: str | None
    result: dict[str, Any]  # the result so far (read-only view)
    open_upload: Callable[[], IO[bytes]]
    # Set when the worker is asked to stop; a long batch may check it.
    should_stop: Callable[[], bool] = lambda: False
    # A slow batch may report items done so far (shown, not checkpointed).
    report_progress: Callable[[int], None] = lambda done_in_batch: None
    cache: dict[str, Any] = field(default_factory=dict)  # per-run memo, not persisted
    # What a job type started for this run and the worker stops when the run
    # ends, however it ends (helper processes, open files); newest first.
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            try:
                closer()
            except Exception:  # noqa: BLE001 - one failed close must not skip the others
                log.exception("job %s: closing a run resource failed", self.job_id)


class JobType(Protocol):
    """A job type: what it declares as class attributes, and its three calls.

    Everything the engine needs to know about a type is declared here and
    read as a plain attribute; nothing is discovered. A type declares every
    one (subclass :class:`JobTypeDefaults` for the usual values);
    :func:`register` refuses a type that leaves one out.
    """

    name: ClassVar[str]
    needs_upload: ClassVar[bool]  # creation requires an uploaded file
    hidden: ClassVar[bool]  # internal types (noop) stay out of user-facing lists
    # The setting that sizes its batches (voter imports write faster in larger ones).
    batch_size_setting: ClassVar[str]
    # It starts helper processes (see cocoa.jobs.pipeline): a worker that runs
    # it readies their fork server (cocoa.jobs.forkserver) when it starts.
    uses_helpers: ClassVar[bool]

    def validate(self, ctx: CreateContext) -> Params: ...

    def plan(self, ctx: RunContext) -> int: ...

    def run_batch(self, ctx: RunContext, checkpoint: Checkpoint | None) -> Batch: ...


class JobTypeDefaults:
    """The usual values of the declarations a job type may leave to them."""

    hidden: ClassVar[bool] = False
    batch_size_setting: ClassVar[str] = "batch_size"
    uses_helpers: ClassVar[bool] = False


# Every declaration of :class:`JobType`, checked when a type is registered.
DECLARATIONS = ("name", "needs_upload", "hidden", "batch_size_setting", "uses_helpers")

_REGISTRY: dict[str, JobType] = {}


def register(job_type: JobType) -> JobType:
    """Add ``job_type`` to the registry; a missing declaration fails here,
    at start-up, rather than when a worker first runs the type."""
    missing = [name for name in DECLARATIONS if not hasattr(job_type, name)]
    if missing:
        raise TypeError(f"Job type {type(job_type).__name__} does not declare {', '.join(missing)} "
                        "(see cocoa.jobs.types.JobType; subclass JobTypeDefaults for the usual values).")
    _REGISTRY[job_type.name] = job_type
    return job_type


def get_job_type(name: str) -> JobType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise JobValidationError(  # internal types (noop) stay out of public messages
            f"Unknown job type {name!r}; known types: {', '.join(all_job_types())}.",
            code="unknown_job_type",
        ) from None


def all_job_types(include_hidden: bool = False) -> list[str]:
    """The registered types (see :mod:`cocoa.jobtypes.builtin` for who registers them)."""
    return sorted(n for n, t in _REGISTRY.items() if include_hidden or not t.hidden)
