"""Voter import, end to end: upload over HTTP to job completed.

A generated 100,000-row NC statewide file is uploaded to a real `cocoa serve
--no-worker` on loopback and processed by a separate `cocoa worker` process,
on SQLite and PostgreSQL. The baseline, measured in the same run, is a raw
load of the same rows with no parsing or normalising: PostgreSQL `COPY` into
a text table, SQLite `executemany` into a text table. Peak RSS is the worker
process's high-water mark (VmHWM).

The clock starts when the upload starts, once the worker is up with its
helper server ready (a deployed worker has been running long before anyone
uploads), and stops at the job's own `completed_at` (same machine clock), so
neither the worker's start-up nor the status polling's interval is counted.

    .venv/bin/python bench/import_voters.py [--rows 100000] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import (  # noqa: E402
    REPO,
    cocoa_env,
    helper_processes,
    start_live_server,
    stop_live_server,
)

from cocoa.samples.voters import generate  # noqa: E402
from procstats import cpu_seconds, peak_rss_mb, postgres_cpu_seconds  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


# Waiting for the job: each status poll costs the API server and this script
# a few milliseconds of CPU, taken from the import on a small machine, and
# the end time comes from the job itself, so the poll can be slow.
POLL_SECONDS = 0.25

# The worker runs with the production timings (the test helper's environment
# shortens them), plus anything given on the command line.
WORKER_ENV = {"COCOA_POLL_SECONDS": "0.5", "COCOA_HEARTBEAT_SECONDS": "5",
              "COCOA_LEASE_SECONDS": "30", "COCOA_REAPER_SECONDS": "2"}


@contextmanager
def fresh_pg() -> Iterator[str]:
    """A new, empty database for one run, dropped afterwards."""
    name = f"bench_iv_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def rows_of(data: bytes) -> tuple[list[str], list[list[str]]]:
    text = data.decode("latin-1")
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header = next(reader)
    return header, [r for r in reader if len(r) == len(header)]


def baseline_sqlite(path: Path, data: bytes) -> float:
    header, rows = rows_of(data)
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE raw ({', '.join(f'c{i} TEXT' for i in range(len(header)))})")
    conn.executemany(f"INSERT INTO raw VALUES ({', '.join('?' * len(header))})", rows)
    conn.commit()
    conn.close()
    return len(rows) / (time.perf_counter() - started)


def baseline_postgres(url: str, data: bytes) -> float:
    header, rows = rows_of(data)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE raw ({', '.join(f'c{i} text' for i in range(len(header)))})")
        with conn.cursor().copy("COPY raw FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows) / (time.perf_counter() - started)


def sample_helpers(worker: int, seen: dict[int, tuple[float, float]]) -> None:
    """Peak RSS and CPU time so far of the worker's helper processes (the
    parse-ahead helper exits before the job completes, so it is sampled)."""
    for pid in helper_processes(worker):
        try:
            rss, cpu = peak_rss_mb(pid), cpu_seconds(pid)
        except (OSError, ValueError):
            continue
        if rss == rss:  # not NaN: it was still there
            seen[pid] = (max(rss, seen.get(pid, (0.0, 0.0))[0]), cpu)


def wait_until_ready(worker: subprocess.Popen[bytes], log: Path) -> None:
    """Until the worker polls for jobs with its helper server ready, as a
    long-running worker is when a user uploads: its start-up is not the
    import's time."""
    deadline = time.monotonic() + 60
    while b"helper process server ready" not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{log.read_text()}")
        time.sleep(0.05)  # poll with a deadline


def end_to_end(db_url: str, workdir: Path, data: bytes) -> tuple[float, float, float, dict[str, int]]:
    server = start_live_server(db_url, workdir, worker=False)
    worker = subprocess.Popen([sys.executable, "-m", "cocoa.cli.main", "worker"], cwd=REPO,
                              env=cocoa_env(db_url, workdir, **WORKER_ENV),
                              stdout=(workdir / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_until_ready(worker, workdir / "worker.log")
        with server.client() as client:
            client.timeout = 600
            started, started_at = time.perf_counter(), time.time()
            response = client.post("/api/v1/voters/import", files={"file": ("ncvoter.txt", data)},
                                   data={"format": "auto"})
            response.raise_for_status()
            accepted = time.perf_counter() - started
            job_id = response.json()["job_id"]
            helpers: dict[int, tuple[float, float]] = {}
            worker_cpu, server_cpu = cpu_seconds(worker.pid), postgres_cpu_seconds()
            api_cpu = cpu_seconds(server.process.pid)
            while True:
                sample_helpers(worker.pid, helpers)
                job = client.get(f"/api/v1/jobs/{job_id}").json()
                if job["status"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(POLL_SECONDS)
            # The finish line is the job's own completion time (same clock):
            # it does not depend on when the next poll happens to look.
            finished = datetime.fromisoformat(job["completed_at"] or job["updated_at"])
            elapsed = finished.timestamp() - started_at
            api_cpu = cpu_seconds(server.process.pid) - api_cpu
            worker_cpu = cpu_seconds(worker.pid) - worker_cpu
            helper_cpu = sum(cpu for _, cpu in helpers.values())
            server_cpu = postgres_cpu_seconds() - server_cpu
            print(f"  CPU during the import: worker {worker_cpu:.1f}s, parse helper "
                  f"{helper_cpu:.1f}s (its last sample), PostgreSQL server processes "
                  f"{server_cpu:.1f}s, API server {api_cpu:.1f}s", flush=True)
            print(f"  upload to 202 Accepted {accepted:.2f}s; job created {job['created_at']}, "
                  f"started {job['started_at']}, completed {job['completed_at']}; "
                  f"upload to completed {elapsed:.2f}s (seen by polling after "
                  f"{time.perf_counter() - started:.2f}s)", flush=True)
        rss = peak_rss_mb(worker.pid)
        assert job["status"] == "completed", job["error"]
        helper_rss = max((rss for rss, _ in helpers.values()), default=0.0)
        return job["progress"]["processed"] / elapsed, rss, helper_rss, job["result"]
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        stop_live_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="COCOA_VOTER_BATCH_SIZE for the worker (default: its default)")
    parser.add_argument("--parse-ahead-min-rows", type=int, default=None,
                        help="COCOA_PARSE_AHEAD_MIN_ROWS for the worker (default: its default)")
    parser.add_argument("--parse-helpers", type=int, default=None,
                        help="COCOA_PARSE_HELPERS for the worker (default: its default)")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.batch_size is not None:
        WORKER_ENV["COCOA_VOTER_BATCH_SIZE"] = str(args.batch_size)
    if args.parse_ahead_min_rows is not None:
        WORKER_ENV["COCOA_PARSE_AHEAD_MIN_ROWS"] = str(args.parse_ahead_min_rows)
    if args.parse_helpers is not None:
        WORKER_ENV["COCOA_PARSE_HELPERS"] = str(args.parse_helpers)
    data = generate("nc_statewide", args.rows, seed=1).data
    print(f"file: {args.rows:,} rows, {len(data) / 1e6:.1f} MB", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            work = Path(tmp) / backend
            work.mkdir()
            with ExitStack() as cleanup:
                if backend == "sqlite":
                    base = baseline_sqlite(work / "raw.db", data)
                    url = f"sqlite:///{work / 'cocoa.db'}"
                else:
                    url = cleanup.enter_context(fresh_pg())
                    base = baseline_postgres(url, data)
                rate, rss, helper_rss, result = end_to_end(url, work, data)
            results.append((backend, rate, base, rss, helper_rss))
            print(f"{backend:10} {rate:8.0f} rows/s end to end   baseline {base:9.0f} rows/s   "
                  f"ratio {rate / base:.3f}   worker peak RSS {rss:.0f} MB   "
                  f"parse helper peak RSS {helper_rss:.0f} MB   "
                  f"created {result.get('voters_created')} households {result.get('households_created')}",
                  flush=True)
    print()
    print("| backend | end-to-end rows/s | raw-load baseline rows/s | ratio "
          "| worker peak RSS (MB) | parse helper peak RSS (MB) | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    targets = {"sqlite": 10_000, "postgresql": 20_000}
    for backend, rate, base, rss, helper_rss in results:
        verdict = "PASS" if rate >= targets[backend] and rss < 300 else "FAIL"
        print(f"| {backend} | {rate:.0f} | {base:.0f} | {rate / base:.3f} | {rss:.0f} | "
              f"{helper_rss:.0f} | "
              f"≥{targets[backend]:,} rows/s, <300 MB: {verdict} |")


if __name__ == "__main__":
    main()
