"""``noop``: an internal job type for tests and benchmarks (hidden from users).

It does nothing useful, slowly if asked: ``items`` items, ``delay_ms`` per
item, every ``error_every``-th item recorded as an item error. Each item it
finishes is a row in ``noop_items``, so a test can prove that a job crashed
and resumed any number of times committed every item exactly once.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import sqlalchemy as sa

from cocoa.db.tables import noop_items
from cocoa.jobs.types import (
    Batch,
    Checkpoint,
    CreateContext,
    ItemError,
    JobFailed,
    JobValidationError,
    Params,
    RunContext,
    register,
)


class NoopJob:
    name: ClassVar[str] = "noop"
    needs_upload: ClassVar[bool] = False
    hidden: ClassVar[bool] = True
    batch_size_setting: ClassVar[str] = "batch_size"
    uses_helpers: ClassVar[bool] = False

    def validate(self, ctx: CreateContext) -> Params:
        params = {
            "items": _int(ctx.params, "items", 1, 0, ctx.settings.max_items_per_job),
            "delay_ms": _int(ctx.params, "delay_ms", 0, 0, 60_000),
            "error_every": _int(ctx.params, "error_every", 0, 0, 10**9),
            "fail_at": _int(ctx.params, "fail_at", -1, -1, 10**9),
            "batch_size": _int(ctx.params, "batch_size", 0, 0, 100_000),
        }
        return params

    def plan(self, ctx: RunContext) -> int:
        return int(ctx.params["items"])

    def run_batch(self, ctx: RunContext, checkpoint: Checkpoint | None) -> Batch:
        start = int((checkpoint or {}).get("next", 0))
        size = int(ctx.params.get("batch_size") or ctx.batch_size)
        end = min(start + size, int(ctx.params["items"]))
        if start <= ctx.params["fail_at"] < end:
            raise JobFailed(f"noop asked to fail at item {ctx.params['fail_at']}")
        delay = ctx.params["delay_ms"] / 1000
        errors: list[ItemError] = []
        every = ctx.params["error_every"]
        for item in range(start, end):
            if delay:
                time.sleep(delay)  # simulated work, not synchronisation
            if every and (item + 1) % every == 0:
                errors.append(ItemError(f"item {item}", "noop_error", f"item {item} is bad on purpose", item))
        done_items = list(range(start, end))
        job_id = ctx.job_id

        def write(conn: sa.Connection) -> dict[str, int]:
            rows = [{"job_id": job_id, "item": i} for i in done_items]
            if rows:  # one row as a plain execute: an executemany of one costs an extra sync
                conn.execute(noop_items.insert(), rows[0] if len(rows) == 1 else rows)
            return {"items": len(done_items)}

        return Batch(
            checkpoint={"next": end}, processed=end - start, succeeded=end - start - len(errors),
            failed=len(errors), errors=errors, done=end >= ctx.params["items"], write=write,
        )


def _int(params: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise JobValidationError(
            f"{key} must be an integer between {low} and {high}.", code="invalid_param", status=422,
            details={"field": key, "value": value},
        )
    return value


class OtherNoopJob(NoopJob):
    """A second internal type, so tests can show different types run side by side."""

    name: ClassVar[str] = "noop_other"


register(NoopJob())
register(OtherNoopJob())
