"""Engine benchmark: drain 5,000 no-op jobs, and enqueue-to-start latency.

Runs Cocoa on PostgreSQL and SQLite and Procrastinate (the baseline) on the
same PostgreSQL server in the same run. Both engines run one job at a time
(Procrastinate's default worker concurrency is 1; Cocoa runs one job per type
at a time by design), each job doing one unit of no-op work.

    .venv/bin/pip install -e '.[bench]'      # Procrastinate, for the baseline only
    .venv/bin/python bench/engine.py [--jobs 5000] [--samples 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.db.engine import make_engine
from cocoa.db.migrate import upgrade
from cocoa.db.tables import jobs
from cocoa.jobs.manager import JobManager
from cocoa.jobs.worker import Worker
from cocoa.jobtypes.builtin import register_builtin_types

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def fresh_pg(name: str) -> str:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def wait_until(predicate: Callable[[], bool], timeout: float = 600, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(interval)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------------- cocoa


def cocoa_settings() -> Settings:
    return Settings(poll_seconds=0.5, heartbeat_seconds=5, reaper_seconds=2)


def cocoa_drain(url: str, n: int) -> float:
    upgrade(url)
    manager = JobManager(make_engine(url), cocoa_settings())
    for _ in range(n):
        manager.create("noop", {"items": 1}, created_by="bench")
    worker = Worker(manager, worker_id="bench")
    started = time.perf_counter()
    thread = worker.start_in_thread()

    def done() -> bool:
        with manager.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(jobs.c.status == "completed")).scalar_one() == n

    wait_until(done, interval=0.1)  # rare polls: the worker thread keeps the GIL to itself
    elapsed = time.perf_counter() - started
    worker.stop()
    thread.join()
    manager.engine.dispose()
    return n / elapsed


def cocoa_latency(url: str, samples: int, *, separate_enqueuer: bool) -> list[float]:
    """Milliseconds from just before ``create`` to the claim (``started_at``).

    With ``separate_enqueuer`` the API side uses its own engine, as a separate
    API process would: wake-ups then come through LISTEN/NOTIFY (PostgreSQL).
    """
    upgrade(url)
    worker_manager = JobManager(make_engine(url), cocoa_settings())
    api_manager = JobManager(make_engine(url), cocoa_settings()) if separate_enqueuer else worker_manager
    worker = Worker(worker_manager, worker_id="bench")
    thread = worker.start_in_thread()
    time.sleep(0.5)  # let the worker reach its idle wait (LISTEN connected)
    latencies = []
    for _ in range(samples):
        job = api_manager.create("noop", {"items": 1}, created_by="bench")
        wait_until(lambda j=job.id: api_manager.get(j).is_terminal)  # type: ignore[misc]
        final = api_manager.get(job.id)
        assert final.started_at is not None
        latencies.append((final.started_at - final.created_at).total_seconds() * 1000)
        time.sleep(0.01)  # the worker is idle again before the next enqueue
    worker.stop()
    thread.join()
    for m in {id(api_manager): api_manager, id(worker_manager): worker_manager}.values():
        m.engine.dispose()
    return latencies


# ---------------------------------------------------------------------- procrastinate


def procrastinate_app(url: str, sync: bool = False):  # type: ignore[no-untyped-def]
    import procrastinate

    connector = (procrastinate.SyncPsycopgConnector if sync else procrastinate.PsycopgConnector)(conninfo=url)
    app = procrastinate.App(connector=connector)
    started: list[float] = []
    event = threading.Event()

    @app.task(name="noop", queue="bench")
    def noop() -> None:
        started.append(time.time())
        event.set()

    return app, noop, started, event


def procrastinate_drain(url: str, n: int) -> float:
    import asyncio

    app, noop, _, _ = procrastinate_app(url)
    with app.open():
        app.schema_manager.apply_schema()
        for _ in range(n):
            noop.defer()
    started = time.perf_counter()

    async def run() -> None:
        async with app.open_async():
            await app.run_worker_async(queues=["bench"], wait=False, install_signal_handlers=False)

    asyncio.run(run())
    return n / (time.perf_counter() - started)


def procrastinate_latency(url: str, samples: int) -> list[float]:
    import asyncio

    app, noop, started, event = procrastinate_app(url)
    with app.open():
        app.schema_manager.apply_schema()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def run() -> None:
        async with app.open_async():
            worker = asyncio.create_task(app.run_worker_async(
                queues=["bench"], wait=True, install_signal_handlers=False))
            await stop.wait()
            worker.cancel()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    time.sleep(1.0)  # let the worker reach its idle wait (LISTEN connected)
    latencies = []
    deferrer, sync_noop, _, _ = procrastinate_app(url, sync=True)  # a separate "API process"
    with deferrer.open():
        for _ in range(samples):
            event.clear()
            t0 = time.time()
            sync_noop.defer()
            if not event.wait(30):
                raise TimeoutError("procrastinate job did not start")
            latencies.append((started[-1] - t0) * 1000)
            time.sleep(0.01)
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=10)
    return latencies


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    register_builtin_types()
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_drain = f"sqlite:///{Path(tmp) / 'drain.db'}"
        sqlite_lat = f"sqlite:///{Path(tmp) / 'lat.db'}"
        measurements = [
            ("procrastinate / PostgreSQL", lambda: procrastinate_drain(fresh_pg("bench_pr_drain"), args.jobs),
             lambda: procrastinate_latency(fresh_pg("bench_pr_lat"), args.samples)),
            ("cocoa / PostgreSQL", lambda: cocoa_drain(fresh_pg("bench_co_drain"), args.jobs),
             lambda: cocoa_latency(fresh_pg("bench_co_lat"), args.samples, separate_enqueuer=True)),
            ("cocoa / SQLite (embedded)", lambda: cocoa_drain(sqlite_drain, args.jobs),
             lambda: cocoa_latency(sqlite_lat, args.samples, separate_enqueuer=False)),
        ]
        for name, drain, latency in measurements:
            throughput = drain()
            lat = latency()
            rows.append((name, throughput, statistics.median(lat), percentile(lat, 99)))
            print(f"{name:28} {throughput:9.0f} jobs/s   p50 {rows[-1][2]:7.2f} ms   p99 {rows[-1][3]:7.2f} ms",
                  flush=True)
    baseline = rows[0]
    print()
    print(f"| engine | jobs/s ({args.jobs} no-op jobs) | x baseline | enqueue→start p50 (ms) | p99 (ms) |")
    print("|---|---:|---:|---:|---:|")
    for name, throughput, p50, p99 in rows:
        print(f"| {name} | {throughput:.0f} | {throughput / baseline[1]:.2f} | {p50:.2f} | {p99:.2f} |")
    cocoa_pg = rows[1]
    print()
    print(f"throughput target (>= 3x procrastinate): {'PASS' if cocoa_pg[1] >= 3 * baseline[1] else 'FAIL'}")
    print(f"latency target (p50 <= procrastinate's): {'PASS' if cocoa_pg[2] <= baseline[2] else 'FAIL'}")


if __name__ == "__main__":
    main()
