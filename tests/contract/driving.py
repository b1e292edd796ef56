"""The engine's batch loop, run in the test process, for a job type's contract tests.

What a worker would commit for one job, batch by batch: each batch's writes
in a transaction of their own, then its checkpoint, counters and errors.
Tests drive a few batches, stop (a "crash"), and drive again from the
stored checkpoint with a fresh run context, as a new worker would.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.jobs.types import ItemError, JobType, RunContext


@dataclass
class Run:
    """What the engine would have committed for one job."""

    job_id: str
    params: dict[str, Any]
    data: bytes
    checkpoint: dict[str, Any] | None = None
    result: dict[str, Any] = field(default_factory=dict)
    errors: list[ItemError] = field(default_factory=list)
    processed: int = 0
    total: int = 0
    phases: list[str] = field(default_factory=list)
    done: bool = False
    batches: int = 0


def drive(job: JobType, engine: sa.Engine, run: Run, *, batch_size: int,
          max_batches: int | None = None, settings: Settings | None = None) -> Run:
    """Run batches of ``job`` with a fresh RunContext (a new worker: empty cache)."""
    ctx = RunContext(job_id=run.job_id, params=run.params, settings=settings or Settings(),
                     engine=engine, batch_size=batch_size, upload_id=None,
                     result=dict(run.result), open_upload=lambda: io.BytesIO(run.data))
    if run.checkpoint is None and run.batches == 0:
        run.total = job.plan(ctx)
    count = 0
    try:
        while not run.done and (max_batches is None or count < max_batches):
            batch = job.run_batch(ctx, run.checkpoint)
            with engine.begin() as conn:
                extra = batch.write(conn) if batch.write else None
            run.checkpoint = batch.checkpoint  # stored with the commit, never before
            for key, value in {**batch.counts, **(extra or {})}.items():
                run.result[key] = run.result.get(key, 0) + value
            run.result.update(batch.result or {})
            run.errors.extend(batch.errors)
            run.processed += batch.processed
            run.total = batch.total if batch.total is not None else run.total
            run.phases.append(batch.phase or "")
            run.done = batch.done
            run.batches += 1
            count += 1
    finally:
        ctx.close()  # helper processes a run started stop with it
    return run
