"""Voter import, end to end: upload over HTTP to job completed, at 100,000 and 1,000,000 rows.

A generated NC statewide file is uploaded to a real `cocoa serve --no-worker`
on loopback and processed by a separate `cocoa worker` process, on SQLite and
PostgreSQL, ``--runs`` times per size and backend, each run on a fresh
database (so the first is a fresh database, as the issue asks); the per-job
and upload limits are raised to the file's size, so a 1,000,000-row file is
one job. Each run prints, and the summary gives the median of:

* rows/s end to end, and the raw-load baseline of the same run (the same
  rows with no parsing or normalising: PostgreSQL `COPY` into a text table,
  SQLite `executemany` into a text table);
* CPU µs per imported row of each process: the API server, the worker, each
  parse helper (sampled while it lives), and the PostgreSQL server processes
  (every `postgres` process on the machine: on a shared machine other work
  lands there too);
* peak RSS (VmHWM) of the worker and of each helper;
* the seconds from the last uploaded byte to the `202 Accepted`.

A ✓ is printed only where the issue's target holds with a 20 % margin (the
1,000,000-row rate against 90 % of the 100,000-row one: without).
CPU per row is the figure that survives a noisy machine; rows/s does not.

The clock starts when the upload starts, once the worker is up with its
helper server ready (a deployed worker has been running long before anyone
uploads), and stops at the job's own `completed_at` (same machine clock), so
neither the worker's start-up nor the status polling's interval is counted.
Generated files are cached under /tmp by (rows, seed); a 5,000,000-row file
is five 1,000,000-row files with the ids of each made distinct.

    .venv/bin/python bench/import_voters.py [--sizes 100000 1000000] [--runs 5] \
        [--backends sqlite postgresql] [--memory-5m]
"""

from __future__ import annotations

import argparse
import csv
import io
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
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
SEED = 1
UPLOAD_PIECE = 1024 * 1024  # bytes per write of the streamed upload

# Waiting for the job: each status poll costs the API server and this script
# a few milliseconds of CPU, taken from the import on a small machine, and
# the end time comes from the job itself, so the poll can be slow.
POLL_SECONDS = 0.25

# The worker runs with the production timings (the test helper's environment
# shortens them), plus anything given on the command line.
WORKER_ENV = {"COCOA_POLL_SECONDS": "0.5", "COCOA_HEARTBEAT_SECONDS": "5",
              "COCOA_LEASE_SECONDS": "30", "COCOA_REAPER_SECONDS": "2"}

# The targets; a ✓ needs them met with MARGIN to spare.
MARGIN = 1.2
TARGET_ROWS_PER_S = 25_000
TARGET_CPU_US = 50.0
TARGET_WORKER_MB = 300.0
TARGET_HELPER_MB = 250.0
TARGET_ACCEPT_S = 1.0


@dataclass(slots=True)
class Run:
    """One import's figures."""

    rows: int
    rate: float  # rows/s end to end
    baseline: float  # rows/s of the raw load
    accept_s: float  # last uploaded byte to 202
    cpu_us: dict[str, float] = field(default_factory=dict)  # process -> µs per row
    rss_mb: dict[str, float] = field(default_factory=dict)  # process -> peak RSS
    result: dict[str, object] = field(default_factory=dict)

    @property
    def total_cpu_us(self) -> float:
        """Worker + helpers + database server (the issue's figure; the API
        server's upload handling is printed apart)."""
        return sum(us for name, us in self.cpu_us.items() if name != "api")


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


# --------------------------------------------------------------------------- the file


def voter_file(rows: int, seed: int = SEED) -> Path:
    """The generated file of ``rows`` rows, cached under /tmp by (rows, seed):
    generating a million rows takes longer than importing them."""
    path = Path(tempfile.gettempdir()) / f"cocoa-bench-nc_statewide-{rows}-{seed}.txt"
    if path.exists():
        return path
    partial = path.with_suffix(".part")
    if rows > 1_000_000 and rows % 1_000_000 == 0:
        _concatenated(voter_file(1_000_000, seed), rows // 1_000_000, partial)
    else:
        partial.write_bytes(generate("nc_statewide", rows, seed=seed).data)
    partial.rename(path)
    return path


def _concatenated(source: Path, copies: int, target: Path) -> None:
    """``copies`` of ``source`` one after another (one header), the ncid of
    copy ``i`` starting with a letter pair of its own instead of ``AB``, so
    no voter of one copy repeats one of another (repeats within a copy stay)."""
    header, _, data = source.read_bytes().partition(b"\n")
    lines = data.split(b"\n")
    with target.open("wb") as out:
        out.write(header + b"\n")
        for copy in range(copies):
            prefix = b'"C' + bytes([ord("A") + copy])
            for line in lines:
                fields = line.split(b"\t", 4)
                if len(fields) == 5 and fields[3].startswith(b'"AB'):
                    fields[3] = prefix + fields[3][3:]
                    line = b"\t".join(fields)
                if line:
                    out.write(line + b"\n")


def rows_of(path: Path) -> tuple[int, Iterator[list[str]]]:
    """The header's width and the well-formed rows, streamed (a million rows
    as lists of strings would not fit in memory)."""
    stream = io.TextIOWrapper(path.open("rb"), encoding="latin-1", newline="")
    reader = csv.reader(stream, delimiter="\t")
    width = len(next(reader))
    return width, (row for row in reader if len(row) == width)


def baseline_sqlite(db: Path, data: Path) -> float:
    width, rows = rows_of(data)
    started = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute(f"CREATE TABLE raw ({', '.join(f'c{i} TEXT' for i in range(width))})")
    count = conn.executemany(f"INSERT INTO raw VALUES ({', '.join('?' * width)})", rows).rowcount
    conn.commit()
    conn.close()
    return count / (time.perf_counter() - started)


def baseline_postgres(url: str, data: Path) -> float:
    width, rows = rows_of(data)
    count = 0
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE raw ({', '.join(f'c{i} text' for i in range(width))})")
        with conn.cursor().copy("COPY raw FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
    return count / (time.perf_counter() - started)


# --------------------------------------------------------------------------- one run


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


class StreamedUpload:
    """The multipart body of an import, streamed from the file, noting when
    its last byte was handed to the connection (httpx asks for the next
    piece only after writing the one before)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.boundary = uuid.uuid4().hex
        self.head = (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\n"
                     f"auto\r\n--{self.boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"ncvoter.txt\"\r\nContent-Type: text/plain\r\n\r\n").encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.last_byte_at = 0.0

    def headers(self) -> dict[str, str]:
        length = len(self.head) + self.path.stat().st_size + len(self.tail)
        return {"Content-Type": f"multipart/form-data; boundary={self.boundary}",
                "Content-Length": str(length)}

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        with self.path.open("rb") as data:
            while piece := data.read(UPLOAD_PIECE):
                yield piece
        yield self.tail
        self.last_byte_at = time.perf_counter()


def end_to_end(db_url: str, workdir: Path, data: Path, rows: int) -> tuple[Run, dict[str, object]]:
    limits = {"COCOA_MAX_ITEMS_PER_JOB": str(max(rows, 100_000)),
              "COCOA_MAX_UPLOAD_BYTES": str(max(data.stat().st_size * 2, 512 * 1024 * 1024))}
    server = start_live_server(db_url, workdir, worker=False, **limits)
    worker = subprocess.Popen([sys.executable, "-m", "cocoa.cli.main", "worker"], cwd=REPO,
                              env=cocoa_env(db_url, workdir, **WORKER_ENV, **limits),
                              stdout=(workdir / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_until_ready(worker, workdir / "worker.log")
        with server.client() as client:
            client.timeout = 3600
            body = StreamedUpload(data)
            worker_cpu, db_cpu = cpu_seconds(worker.pid), postgres_cpu_seconds()
            api_cpu = cpu_seconds(server.process.pid)
            started_at = time.time()
            response = client.post("/api/v1/voters/import", content=iter(body), headers=body.headers())
            accept_s = time.perf_counter() - body.last_byte_at
            response.raise_for_status()
            job_id = response.json()["job_id"]
            helpers: dict[int, tuple[float, float]] = {}
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
            cpu = {"api": cpu_seconds(server.process.pid) - api_cpu,
                   "worker": cpu_seconds(worker.pid) - worker_cpu}
            for index, (_rss, helper_cpu) in enumerate(value for _pid, value in sorted(helpers.items())):
                cpu[f"helper{index + 1}"] = helper_cpu
            if db_url.startswith("postgresql"):
                cpu["postgres"] = postgres_cpu_seconds() - db_cpu
        assert job["status"] == "completed", job["error"]
        processed = job["progress"]["processed"]
        rss = {"worker": peak_rss_mb(worker.pid)}
        for index, (helper_rss, _cpu) in enumerate(value for _pid, value in sorted(helpers.items())):
            rss[f"helper{index + 1}"] = helper_rss
        run = Run(processed, processed / elapsed, 0.0, accept_s,
                  {name: seconds * 1e6 / processed for name, seconds in cpu.items()}, rss,
                  job["result"])
        print(f"    job created {job['created_at']}, started {job['started_at']}, completed "
              f"{job['completed_at']}; upload to completed {elapsed:.2f}s", flush=True)
        return run, job["result"]
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        stop_live_server(server)


def one_run(backend: str, data: Path, rows: int) -> Run:
    """A fresh database, its raw-load baseline, then the import."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as cleanup:
        work = Path(tmp)
        if backend == "sqlite":
            base = baseline_sqlite(work / "raw.db", data)
            url = f"sqlite:///{work / 'cocoa.db'}"
        else:
            url = cleanup.enter_context(fresh_pg())
            base = baseline_postgres(url, data)
        run, _ = end_to_end(url, work, data, rows)
        run.baseline = base
        return run


# --------------------------------------------------------------------------- report


def tick(ok: bool) -> str:
    return "✓" if ok else "✗"


def describe(run: Run) -> str:
    cpu = ", ".join(f"{name} {us:.1f}" for name, us in run.cpu_us.items())
    rss = ", ".join(f"{name} {mb:.0f}" for name, mb in run.rss_mb.items())
    return (f"{run.rate:8.0f} rows/s (baseline {run.baseline:8.0f}, ratio {run.rate / run.baseline:.3f}); "
            f"CPU µs/row: {cpu}; total {run.total_cpu_us:.1f} (without api); peak RSS MB: {rss}; "
            f"last byte to 202 {run.accept_s:.2f}s; created {run.result.get('voters_created')} "
            f"households {run.result.get('households_created')}")


def median_of(runs: list[Run], pick: str) -> float:
    values = [getattr(run, pick) for run in runs]
    return statistics.median(values)


def median_by_process(runs: list[Run], attribute: str) -> dict[str, float]:
    names = sorted({name for run in runs for name in getattr(run, attribute)})
    return {name: statistics.median(getattr(run, attribute).get(name, 0.0) for run in runs)
            for name in names}


def summary(results: dict[tuple[str, int], list[Run]]) -> None:
    """The medians, with a ✓ only where a target holds with the margin."""
    print()
    print("| backend | rows | runs | rows/s (median) | baseline rows/s | CPU µs/row by process "
          "| CPU µs/row total | worker MB | helper MB (max) | last byte → 202 s | targets |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|")
    for (backend, rows), runs in results.items():
        rate, base = median_of(runs, "rate"), median_of(runs, "baseline")
        cpu = median_by_process(runs, "cpu_us")
        total = statistics.median(run.total_cpu_us for run in runs)
        rss = median_by_process(runs, "rss_mb")
        worker_mb = rss.pop("worker", 0.0)
        helper_mb = max(rss.values(), default=0.0)
        accept = median_of(runs, "accept_s")
        small = results.get((backend, 100_000))
        verdicts = [
            f"≥{TARGET_ROWS_PER_S:,} rows/s {tick(rate >= TARGET_ROWS_PER_S * MARGIN)}",
            f"≤{TARGET_CPU_US:.0f} µs/row {tick(total * MARGIN <= TARGET_CPU_US)}",
            f"worker ≤{TARGET_WORKER_MB:.0f} MB {tick(worker_mb * MARGIN <= TARGET_WORKER_MB)}",
            f"helper ≤{TARGET_HELPER_MB:.0f} MB {tick(helper_mb * MARGIN <= TARGET_HELPER_MB)}",
            f"202 ≤{TARGET_ACCEPT_S:.0f} s {tick(accept * MARGIN <= TARGET_ACCEPT_S)}",
        ]
        if rows > 100_000 and small:  # the 100,000-row figure of the same invocation
            # Plain 90 %: the margin on top would ask for more than the 100k figure.
            keeps = rate >= 0.9 * median_of(small, "rate")
            verdicts.append(f"≥90 % of 100k rows/s {tick(keeps)}")
        by_process = ", ".join(f"{name} {us:.1f}" for name, us in cpu.items())
        print(f"| {backend} | {rows:,} | {len(runs)} | {rate:.0f} | {base:.0f} | {by_process} | "
              f"{total:.1f} | {worker_mb:.0f} | {helper_mb:.0f} | {accept:.2f} | {'; '.join(verdicts)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="rows per file (default: 100000 1000000)")
    parser.add_argument("--rows", type=int, default=None, help="one size only (same as --sizes N)")
    parser.add_argument("--runs", type=int, default=5, help="runs per size and backend (default 5)")
    parser.add_argument("--memory-5m", action="store_true",
                        help="also one run of 5,000,000 rows per backend, for memory and the 202")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="COCOA_VOTER_BATCH_SIZE for the worker (default: its default)")
    parser.add_argument("--parse-ahead-min-rows", type=int, default=None,
                        help="COCOA_PARSE_AHEAD_MIN_ROWS for the worker (default: its default)")
    parser.add_argument("--parse-helpers", type=int, default=None,
                        help="COCOA_PARSE_HELPERS for the worker (default: its default)")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for option, name in ((args.batch_size, "COCOA_VOTER_BATCH_SIZE"),
                         (args.parse_ahead_min_rows, "COCOA_PARSE_AHEAD_MIN_ROWS"),
                         (args.parse_helpers, "COCOA_PARSE_HELPERS")):
        if option is not None:
            WORKER_ENV[name] = str(option)
    plan = [(size, args.runs) for size in ([args.rows] if args.rows else args.sizes)]
    if args.memory_5m:
        plan.append((5_000_000, 1))
    results: dict[tuple[str, int], list[Run]] = {}
    for rows, runs in plan:
        data = voter_file(rows)
        print(f"file: {rows:,} rows, {data.stat().st_size / 1e6:.1f} MB ({data})", flush=True)
        for backend in args.backends:
            for number in range(1, runs + 1):
                run = one_run(backend, data, rows)
                results.setdefault((backend, rows), []).append(run)
                print(f"  {backend:10} run {number}: {describe(run)}", flush=True)
    summary(results)


if __name__ == "__main__":
    main()
