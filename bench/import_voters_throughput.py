"""End-to-end throughput of ``import_voters`` on one backend.

Drives the job type with the same tiny loop the contract tests use (validate,
plan, run_batch -> write in its own transaction) on a generated file, and
prints rows/s for the whole import and for the database writes alone.

    .venv/bin/python bench/import_voters_throughput.py --backend sqlite --rows 100000
    .venv/bin/python bench/import_voters_throughput.py --backend postgresql
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.db.engine import make_engine
from cocoa.db.migrate import upgrade
from cocoa.jobs.types import CreateContext, RunContext, tune_garbage_collector
from cocoa.jobtypes.import_voters import ImportVoters
from cocoa.samples.voters import generate

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def database(backend: str, workdir: Path) -> tuple[str, object]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", None
    name = f"cocoa_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return sa.make_url(PG_ADMIN).set(database=name).render_as_string(False), (admin, name)


def run(engine: sa.Engine, data: bytes, batch_size: int) -> tuple[float, float, dict[str, int]]:
    job = ImportVoters()
    settings = Settings(max_items_per_job=10_000_000)
    started, cpu = time.perf_counter(), time.process_time()
    with engine.begin() as conn:
        params = job.validate(CreateContext(conn=conn, job_id="bench", params={"format": "auto"},
                                            settings=settings, upload=io.BytesIO(data)))
    ctx = RunContext(job_id="bench", params=params, settings=settings, engine=engine,
                     batch_size=batch_size, upload_id=None, result={},
                     open_upload=lambda: io.BytesIO(data))
    job.plan(ctx)
    checkpoint, done, writing, totals = None, False, 0.0, {}
    while not done:
        batch = job.run_batch(ctx, checkpoint)
        t = time.perf_counter()
        with engine.begin() as conn:
            extra = batch.write(conn) if batch.write else None
        writing += time.perf_counter() - t
        for key, value in {**batch.counts, **(extra or {})}.items():
            totals[key] = totals.get(key, 0) + value
        checkpoint, done = batch.checkpoint, batch.done
    totals["client_cpu_ms"] = int((time.process_time() - cpu) * 1000)
    return time.perf_counter() - started, writing, totals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--layout", default="nc_statewide")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    t = time.perf_counter()
    data = generate(args.layout, args.rows, args.seed).data
    print(f"generated {args.rows} {args.layout} rows ({len(data) / 1e6:.1f} MB) "
          f"in {time.perf_counter() - t:.1f}s")
    with tempfile.TemporaryDirectory() as tmp:
        url, cleanup = database(args.backend, Path(tmp))
        try:
            upgrade(url)
            engine = make_engine(url)
            tune_garbage_collector()  # as a worker process runs its batches
            for label in ("first import", "re-import (unchanged)"):
                total, writing, counts = run(engine, data, args.batch_size)
                cpu = counts.pop("client_cpu_ms") / 1000
                print(f"{args.backend} {label}: {args.rows / total:,.0f} rows/s end to end "
                      f"({total:.1f}s wall, of which writes {writing:.1f}s; this process "
                      f"used {cpu:.1f}s CPU = {args.rows / cpu:,.0f} rows/CPU-s) {counts}")
            engine.dispose()
        finally:
            if cleanup is not None:
                admin, name = cleanup  # type: ignore[misc]
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
