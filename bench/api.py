"""HTTP API read latency and throughput, idle and while a job writes progress.

Starts the real ``cocoa serve`` (Uvicorn, embedded worker) on loopback for
each backend, exactly as the tests do, then hammers two read endpoints with
concurrent httpx clients:

* ``GET /api/v1/jobs/{id}``      - one job (the watcher's and CLI's poll)
* ``GET /api/v1/jobs?limit=50``  - a full page of the listing

once with the worker idle and once while a ``noop`` job commits a progress
batch every few milliseconds. Target: p99 <= 50 ms while a job runs.

Usage::

    .venv/bin/python bench/api.py [--backends sqlite,postgresql] [--clients 8] [--threads] [--requests 1600]
                                  [--server-processes 2]

``--server-processes`` is ``COCOA_WEB_PROCESSES`` of the server: one per core
(2 on the reference machine) is the recommended set-up; 1 is the default.

PostgreSQL comes from ``COCOA_TEST_PG_URL`` (default: postgres@127.0.0.1:5432).
This is a benchmark script, not a test: it prints a table and asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 50.0

sys.path.insert(0, str(REPO))
import tests.conftest as support  # noqa: E402  (the one server launcher, shared with the tests)


@dataclass
class Result:
    backend: str
    phase: str
    endpoint: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def row(self) -> str:
        verdict = "" if self.phase != "job running" else (
            "ok" if self.percentile(0.99) <= TARGET_P99_MS else "MISSED")
        return (f"{self.backend:<11} {self.phase:<12} {self.endpoint:<22} {self.requests:>6} "
                f"{self.throughput:>9.0f} {statistics.median(self.latencies_ms):>8.1f} "
                f"{self.percentile(0.99):>8.1f} {max(self.latencies_ms):>8.1f} {self.errors:>4}  {verdict}")


HEADER = (f"{'backend':<11} {'phase':<12} {'endpoint':<22} {'reqs':>6} {'req/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'errs':>4}")


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    name = f"cocoa_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(support.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(support.PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def client_run(url: str, token: str, path: str, count: int) -> tuple[list[float], int]:
    """One keep-alive client: ``count`` sequential GETs, latency of each in ms."""
    latencies: list[float] = []
    bad = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        client.get(path)  # connect outside the measurement
        for _ in range(count):
            start = time.perf_counter()
            response = client.get(path)
            latencies.append((time.perf_counter() - start) * 1000)
            bad += response.status_code != 200
    return latencies, bad


def hammer(server: Any, path: str, total: int, clients: int,
           processes: bool) -> tuple[float, list[float], int]:
    """``total`` GETs of ``path`` split over ``clients`` concurrent clients.

    Clients run in separate processes by default: threads of one Python
    process would measure the client's own GIL queue as server latency.
    """
    pool_type = ProcessPoolExecutor if processes else ThreadPoolExecutor
    args = [(server.url, server.admin_token, path, total // clients)] * clients
    started = time.perf_counter()
    with pool_type(clients) as pool:
        outcomes = list(pool.map(client_run, *zip(*args, strict=True)))
    elapsed = time.perf_counter() - started
    return elapsed, [ms for lat, _ in outcomes for ms in lat], sum(bad for _, bad in outcomes)


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark setup timed out")
        time.sleep(0.05)


def run_backend(backend: str, clients: int, total: int, processes: bool, server_processes: int) -> list[Result]:
    from cocoa.config import Settings
    from cocoa.db.engine import make_engine
    from cocoa.jobs.manager import JobManager
    from cocoa.jobtypes.builtin import register_builtin_types

    register_builtin_types()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
        server = support.start_live_server(url, Path(tmp), COCOA_WEB_PROCESSES=str(server_processes))
        manager = JobManager(make_engine(url), Settings(database_url=url, data_dir=Path(tmp)))
        try:
            ids = [manager.create("noop", {"items": 10, "error_every": 3}, created_by="bench").id
                   for _ in range(120)]
            with server.client() as client:
                wait_for(lambda: client.get("/api/v1/jobs", params={"type": "noop", "status": "completed"})
                         .json()["total"] == len(ids))
            paths = {"GET /jobs/{id}": f"/api/v1/jobs/{ids[-1]}",
                     "GET /jobs?limit=50": "/api/v1/jobs?type=noop&limit=50"}
            for endpoint, path in paths.items():
                measured = hammer(server, path, total, clients, processes)
                results.append(Result(backend, "idle", endpoint, total, *measured))
            busy = manager.create("noop", {"items": 100_000, "delay_ms": 1, "batch_size": 10},
                                  created_by="bench")
            wait_for(lambda: manager.get(busy.id).processed > 0)
            for endpoint, path in paths.items():
                before = manager.get(busy.id).processed
                measured = hammer(server, path, total, clients, processes)
                after = manager.get(busy.id)
                assert after.status.value == "processing", "the job finished during the measurement"
                results.append(Result(backend, "job running", endpoint, total, *measured))
                print(f"  [{backend}] job committed {after.processed - before} items "
                      f"({(after.processed - before) // 10} batches) during {endpoint}", flush=True)
            manager.control(busy.id, "cancel")
        finally:
            manager.engine.dispose()
            support.stop_live_server(server)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients")
    parser.add_argument("--threads", action="store_true",
                        help="run the clients as threads of this process instead of processes")
    parser.add_argument("--requests", type=int, default=1600, help="per endpoint and phase")
    parser.add_argument("--server-processes", type=int, default=2,
                        help="cocoa serve processes (COCOA_WEB_PROCESSES; one per core)")
    args = parser.parse_args()
    results: list[Result] = []
    for backend in args.backends.split(","):
        print(f"running {backend} ...", flush=True)
        results.extend(run_backend(backend, args.clients, args.requests, not args.threads,
                                   args.server_processes))
    mode = "threads" if args.threads else "processes"
    print(f"\n{args.clients} concurrent clients ({mode}), {args.server_processes} server process(es), "
          f"{args.requests} requests per row, loopback, "
          f"target p99 <= {TARGET_P99_MS:.0f} ms while a job runs\n")
    print(HEADER)
    for result in results:
        print(result.row())


if __name__ == "__main__":
    main()
