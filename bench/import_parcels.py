"""Parcel import + household linking at job scale, on SQLite and PostgreSQL.

Run: ``.venv/bin/python bench/import_parcels.py [--n 100000] [--households 100000]
[--formats geojson,shapefile] [--backends sqlite,postgresql] [--batch-size 5000]
[--pg-url postgresql://postgres@127.0.0.1:5432/]``

Generates the sample town (``cocoa.samples.parcels``) once, writes it as
GeoJSON (WGS84) and a zipped shapefile (EPSG:2264 with .prj), then for every
backend x format runs one child process that: migrates a scratch database
(a temp SQLite file, or a fresh PostgreSQL database that is dropped after),
inserts the households, validates the upload and drives the ``parcel_import``
job type batch by batch the way the engine does (run_batch outside, write +
checkpoint inside one transaction). Children keep the peak-RSS figure honest:
``ru_maxrss`` is per process.

Targets: import + linking within 15 s on SQLite; peak RSS under 1 GB.
Exit status 1 when a target or the linking score is missed.

Until the worker is wired in, the loop here stands in for it; switch
``drive`` to the real worker later.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

TARGET_SECONDS_SQLITE = 15.0
TARGET_RSS_MB = 1024.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# --------------------------------------------------------------------------- parent


def generate(n: int, n_households: int, formats: list[str], workdir: str) -> dict[str, Any]:
    from cocoa.samples import parcels as town_mod

    started = time.perf_counter()
    town = town_mod.generate_town(n, seed=42, spelling="usps")
    generated = time.perf_counter() - started
    households = town.households[:n_households]
    with open(os.path.join(workdir, "households.json"), "w") as out:
        json.dump([_hh(h) for h in households], out)
    sizes = {}
    writers = {"geojson": town_mod.to_geojson, "shapefile": town_mod.to_shapefile_zip,
               "gpkg": town_mod.to_gpkg, "filegdb": town_mod.to_filegdb_zip,
               "csv": town_mod.to_csv}
    write_seconds = {}
    for fmt in formats:
        t0 = time.perf_counter()
        data = writers[fmt](town)
        write_seconds[fmt] = time.perf_counter() - t0
        sizes[fmt] = len(data)
        with open(os.path.join(workdir, f"upload.{fmt}"), "wb") as out:
            out.write(data)
    return {"generate_s": generated, "write_s": write_seconds, "bytes": sizes,
            "parcels": len(town.parcels), "households": len(households)}


def _hh(h: Any) -> dict[str, Any]:
    return {name: getattr(h, name) for name in (
        "street", "unit", "city", "state", "zip_code", "latitude", "longitude",
        "expected_apn", "expected_method")}


def run_child(args: argparse.Namespace, backend: str, fmt: str, workdir: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", backend, fmt, workdir,
           "--batch-size", str(args.batch_size), "--pg-url", args.pg_url]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child {backend}/{fmt} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parent(args: argparse.Namespace) -> int:
    formats = args.formats.split(",")
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="cocoa-bench-") as workdir:
        # generated in a child too: a forked child inherits the parent's peak RSS
        gen = json.loads(subprocess.run(
            [sys.executable, __file__, "--generate", workdir, "--n", str(args.n),
             "--households", str(args.households), "--formats", args.formats],
            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        print(f"sample town: {gen['parcels']:,} parcel features, {gen['households']:,} "
              f"households; generated in {gen['generate_s']:.1f} s")
        for fmt in formats:
            print(f"  {fmt}: {gen['bytes'][fmt] / 1e6:.1f} MB written in "
                  f"{gen['write_s'][fmt]:.1f} s")
        ok = True
        header = (f"{'backend':<11}{'format':<10}{'validate':>9}{'import':>8}{'link':>7}"
                  f"{'total':>8}{'cpu':>7}{'rate/s':>9}{'RSS MB':>8}  linked addr/loc  score")
        print(header)
        for backend in backends:
            for fmt in formats:
                r = run_child(args, backend, fmt, workdir)
                total = r["import_s"] + r["link_s"]
                print(f"{backend:<11}{fmt:<10}{r['validate_s']:>9.2f}{r['import_s']:>8.2f}"
                      f"{r['link_s']:>7.2f}{total:>8.2f}{r['cpu_s']:>7.2f}"
                      f"{r['parcels'] / r['import_s']:>9,.0f}"
                      f"{r['peak_rss_mb']:>8.0f}  {r['linked_address']:,}/"
                      f"{r['linked_location']:,}  {r['score']:.4f}")
                if backend == "sqlite" and total > TARGET_SECONDS_SQLITE:
                    ok = False
                    print(f"  MISSED: import + linking {total:.1f} s > {TARGET_SECONDS_SQLITE} s")
                if r["peak_rss_mb"] > TARGET_RSS_MB:
                    ok = False
                    print(f"  MISSED: peak RSS {r['peak_rss_mb']:.0f} MB > {TARGET_RSS_MB} MB")
                if r["score"] < 1.0:
                    ok = False
                    print(f"  MISSED: {r['wrong']} households linked wrongly")
    return 0 if ok else 1


# --------------------------------------------------------------------------- child


def child(backend: str, fmt: str, workdir: str, batch_size: int, pg_url: str) -> None:
    with open(os.path.join(workdir, f"upload.{fmt}"), "rb") as handle:
        data = handle.read()
    with open(os.path.join(workdir, "households.json")) as handle:
        households = json.load(handle)
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="cocoa-bench-db-") as tmp:
            result = measure(f"sqlite:///{tmp}/bench.db", data, fmt, households, batch_size)
    else:
        result = with_pg_database(pg_url, lambda url: measure(url, data, fmt, households,
                                                                batch_size))
    print(json.dumps(result))


def with_pg_database(admin_url: str, body: Any) -> dict[str, Any]:
    from cocoa.db.engine import normalise_url

    name = f"cocoa_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(normalise_url(admin_url)).set(database=name)
    try:
        result: dict[str, Any] = body(url.render_as_string(hide_password=False))
        return result
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def measure(url: str, data: bytes, fmt: str, households_in: list[dict[str, Any]],
            batch_size: int) -> dict[str, Any]:
    from cocoa.config import Settings
    from cocoa.db.engine import make_engine
    from cocoa.db.migrate import upgrade
    from cocoa.jobs.types import CreateContext, RunContext, tune_garbage_collector
    from cocoa.jobtypes.parcel_import import ParcelImport

    upgrade(url)
    engine = make_engine(url)
    insert_households(engine, households_in)
    tune_garbage_collector()  # as a worker process runs its batches
    job, job_id = ParcelImport(), str(uuid.uuid4())
    settings = Settings(batch_size=batch_size)

    t0 = time.perf_counter()
    with engine.begin() as conn:
        params = job.validate(CreateContext(conn=conn, job_id=job_id, params={},
                                            settings=settings, upload=io.BytesIO(data),
                                            upload_filename=f"parcels.{fmt}"))
    validate_s = time.perf_counter() - t0

    ctx = RunContext(job_id=job_id, params=params, settings=settings, engine=engine,
                     batch_size=batch_size, upload_id=None, result={},
                     open_upload=lambda: io.BytesIO(data))
    cpu0 = time.process_time()
    timings, counts = drive(job, ctx, engine)
    timings["cpu_s"] = time.process_time() - cpu0
    score, wrong = score_links(engine, households_in)
    engine.dispose()
    return {"validate_s": validate_s, **timings, "parcels": params["file"]["feature_count"],
            "linked_address": counts.get("households_linked_address", 0),
            "linked_location": counts.get("households_linked_location", 0),
            "repaired": counts.get("parcels_repaired", 0), "score": score, "wrong": wrong,
            "peak_rss_mb": peak_rss_mb()}


def drive(job: Any, ctx: Any, engine: sa.Engine) -> tuple[dict[str, float], dict[str, int]]:
    """The engine's loop, minus leases: compute, then write + checkpoint atomically."""
    job.plan(ctx)
    checkpoint: dict[str, Any] | None = None
    counts: dict[str, int] = {}
    phase_time = {"import": 0.0, "linking": 0.0}
    done = False
    while not done:
        t0 = time.perf_counter()
        phase = (checkpoint or {}).get("phase", "import")
        batch = job.run_batch(ctx, checkpoint)
        with engine.begin() as conn:
            if batch.write:
                batch.write(conn)
        checkpoint, done = batch.checkpoint, batch.done
        for key, value in batch.counts.items():
            counts[key] = counts.get(key, 0) + value
        phase_time[phase] += time.perf_counter() - t0
    return {"import_s": phase_time["import"], "link_s": phase_time["linking"]}, counts


def insert_households(engine: sa.Engine, rows_in: list[dict[str, Any]]) -> None:
    from cocoa.db.tables import households
    from cocoa.domain.addresses import household_key

    now = datetime.now(UTC)
    rows = [{"address_key": household_key(h["street"], h["city"], h["state"], h["zip_code"],
                                          h["unit"]),
             "street_line": h["street"], "unit": h["unit"], "city": h["city"],
             "state": h["state"], "zip_code": h["zip_code"], "latitude": h["latitude"],
             "longitude": h["longitude"], "created_at": now, "updated_at": now}
            for h in rows_in]
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(households.insert(), rows[i:i + 5000])


def score_links(engine: sa.Engine, rows_in: list[dict[str, Any]]) -> tuple[float, int]:
    """Share of households whose (parcel, method) is exactly the expected one."""
    from cocoa.db.tables import households, parcels

    query = (sa.select(parcels.c.apn, households.c.parcel_link_method)
             .select_from(households.outerjoin(parcels, households.c.parcel_id == parcels.c.id))
             .order_by(households.c.id))
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(query)]
    expected = [(h["expected_apn"], h["expected_method"]) for h in rows_in]
    wrong = sum(1 for g, e in zip(got, expected, strict=True) if g != e)
    return 1 - wrong / max(len(expected), 1), wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--formats", default="geojson,shapefile")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--batch-size", type=int, default=5000,
                        help="parcels per batch (COCOA_PARCEL_BATCH_SIZE's default)")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--child", nargs=3, metavar=("BACKEND", "FORMAT", "WORKDIR"))
    parser.add_argument("--generate", metavar="WORKDIR")
    args = parser.parse_args()
    if args.generate:
        print(json.dumps(generate(args.n, args.households, args.formats.split(","),
                                  args.generate)))
        return 0
    if args.child:
        backend, fmt, workdir = args.child
        child(backend, fmt, workdir, batch_size=args.batch_size, pg_url=args.pg_url)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
