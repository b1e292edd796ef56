"""Where a job's engine overhead goes: CPU and SQL statements per job.

Drains ``--jobs`` queued no-op jobs with one worker thread and prints the
process CPU per job and the statements per job, by statement, counted from
SQLAlchemy's ``before_cursor_execute``. Counting survives a noisy machine
where ``bench/engine.py``'s jobs/s do not. ``--without-history`` skips the
history rows (``cocoa.jobs.history.record_all``) to show their share.

    .venv/bin/python bench/engine_cost.py --backend sqlite --jobs 3000
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from cocoa.db.engine import make_engine
from cocoa.db.migrate import upgrade
from cocoa.db.tables import jobs
from cocoa.jobs.manager import JobManager
from cocoa.jobs.worker import Worker
from engine import cocoa_settings, fresh_pg, wait_until


def drain(url: str, n: int) -> None:
    upgrade(url)
    manager = JobManager(make_engine(url), cocoa_settings())
    for _ in range(n):
        manager.create("noop", {"items": 1}, created_by="bench")
    counts: collections.Counter[str] = collections.Counter()

    @event.listens_for(sa.Engine, "before_cursor_execute")  # every engine: the worker may open its own
    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counts[" ".join(statement.split())[:90]] += 1

    worker = Worker(manager, worker_id="bench")
    cpu, started = time.process_time(), time.perf_counter()
    thread = worker.start_in_thread()

    def done() -> bool:
        with manager.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(jobs.c.status == "completed")).scalar_one() == n

    wait_until(done, interval=0.1)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    worker.stop()
    thread.join()
    manager.engine.dispose()
    print(f"{n / elapsed:.0f} jobs/s, process CPU {cpu / n * 1e6:.0f} µs/job, "
          f"statements/job {sum(counts.values()) / n:.2f}")
    for statement, times in counts.most_common(8):
        print(f"  {times / n:6.2f}  {statement}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--without-history", action="store_true")
    args = parser.parse_args()
    with contextlib.suppress(ImportError):  # so the same script runs in an older tree, for an A/B
        from cocoa.jobtypes.builtin import register_builtin_types

        register_builtin_types()
    if args.without_history:
        from cocoa.jobs import history

        history.record_all = lambda conn, events: None  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_pg("bench_cost") if args.backend == "postgresql" else f"sqlite:///{Path(tmp) / 'cost.db'}"
        drain(url, args.jobs)


if __name__ == "__main__":  # the parse helpers' fork server re-imports this module
    main()
