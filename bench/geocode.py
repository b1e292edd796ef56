"""Geocoding throughput against the loopback stub: rate-limit compliance and
the offline provider's speed.

Run: ``.venv/bin/python bench/geocode.py [--households 20000] [--seconds 30]``

Three runs of the real ``geocode_households`` job type on a fresh SQLite
database (20,000 households, 10% of them flats in 10-unit buildings, parcels
for 90% of the addresses), driven by the same loop the engine runs
(validate in the creation transaction, plan, run_batch, write in one
transaction). The stub runs in a child process so that its record of
arrival times does not share this process's GIL:

1. ``nominatim`` (one request per address) at a 20 requests/s limit over a
   bounded sub-run of ``--seconds`` worth of households. Judged from the
   stub's arrival times: achieved rate vs the limit (target >= 95%) and the
   most requests in any 1-second window (must not exceed the limit).
2. ``census`` batches over all households (1 request/s, 2,000 rows each).
3. ``local`` over all households (target >= 20,000 households/s).

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cocoa.config import Settings  # noqa: E402
from cocoa.db.engine import make_engine  # noqa: E402
from cocoa.db.migrate import upgrade  # noqa: E402
from cocoa.db.tables import households, jobs, parcels  # noqa: E402
from cocoa.domain.addresses import household_key  # noqa: E402
from cocoa.jobs.types import CreateContext, JobFailed, RunContext, tune_garbage_collector  # noqa: E402
from cocoa.jobtypes.geocode_households import GeocodeHouseholds  # noqa: E402
from stubs.geocoder_stub import StubProcess, max_per_window  # noqa: E402

JOB = GeocodeHouseholds()
STREETS = ("MAIN ST", "OAK AVE", "ELM ST", "PINE RD", "MAPLE DR", "CEDAR LN", "CHURCH ST",
           "MILL RD", "LAKE DR", "RIVER RD", "FOREST DR", "PARK AVE", "HIGH ST", "BROAD ST")
ZIPS = ("27601", "27603", "27605", "27607", "27609")
RATE_TARGET = 0.95
LOCAL_TARGET = 20_000


def addresses(n: int) -> list[tuple[str, str | None, str]]:
    """(street, unit, zip): 90% houses, 10% flats in 10-unit buildings."""
    out: list[tuple[str, str | None, str]] = []
    flats = n // 10
    for i in range(n - flats):
        out.append((f"{100 + i // 70} {STREETS[i % 14]}", None, ZIPS[(i // 14) % 5]))
    for i in range(flats):
        building = i // 10
        out.append((f"{9000 + building} {STREETS[building % 14]}", str(i % 10 + 1),
                    ZIPS[building % 5]))
    return out


def populate(engine: sa.Engine, n: int) -> None:
    now = datetime.now(UTC)
    rows, parcel_rows, seen = [], [], set()
    for street, unit, zip_code in addresses(n):
        key = household_key(street, "Raleigh", "NC", zip_code, unit)
        rows.append({"address_key": key, "street_line": street, "unit": unit,
                     "city": "Raleigh", "state": "NC", "zip_code": zip_code,
                     "created_at": now, "updated_at": now})
        building = household_key(street, "Raleigh", "NC", zip_code)
        if building not in seen and len(seen) % 10 != 9:  # 90% of addresses have a parcel
            parcel_rows.append({
                "source": "bench", "apn": str(len(seen)), "situs_address": street,
                "situs_key": building, "geometry_wkb": b"\x00", "min_lon": -78.6,
                "min_lat": 35.7, "max_lon": -78.6, "max_lat": 35.7, "rep_lon": -78.6,
                "rep_lat": 35.7, "attributes": {}, "created_at": now, "updated_at": now})
        seen.add(building)
    with engine.begin() as conn:
        conn.execute(sa.insert(households), rows)
        conn.execute(sa.insert(parcels), parcel_rows)


def reset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(households).values(
            latitude=None, longitude=None, geocode_status=None, geocode_provider=None,
            geocode_quality=None, geocoded_address=None, geocoded_at=None))


def run_job(engine: sa.Engine, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """Create + run one job the way the engine does; returns counts and times."""
    started, cpu_started = time.perf_counter(), time.process_time()
    job_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.insert(jobs).values(
            id=job_id, type=JOB.name, status="pending", request=params, params={}, result={},
            timeout_seconds=3600.0, created_at=now, updated_at=now))
        stored = JOB.validate(CreateContext(conn, job_id, params, settings))
    ctx = RunContext(job_id=job_id, params=stored, settings=settings, engine=engine,
                     batch_size=settings.geocode_batch_size, upload_id=None, result={},
                     open_upload=lambda: None)  # type: ignore[arg-type, return-value]
    total = JOB.plan(ctx)
    counts: dict[str, int] = {"processed": 0}
    checkpoint = None
    failure = None
    while True:
        try:
            batch = JOB.run_batch(ctx, checkpoint)
        except JobFailed as exc:
            failure = str(exc)
            break
        with engine.begin() as conn:
            if batch.write is not None:
                batch.write(conn)
        checkpoint = batch.checkpoint
        counts["processed"] += batch.processed
        for name, value in batch.counts.items():
            counts[name] = counts.get(name, 0) + value
        if batch.done:
            break
    return {"total": total, "counts": counts, "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu_started, "failure": failure}


def judge_rate(arrivals: list[float], limit: float) -> tuple[float, int, bool]:
    achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    worst = max_per_window(arrivals)
    return achieved, worst, worst <= limit and achieved >= RATE_TARGET * limit


def bench_nominatim(engine: sa.Engine, stub: StubProcess, rate: float, seconds: float) -> bool:
    reset(engine)
    settings = Settings(nominatim_base_url=stub.url, nominatim_user_agent="cocoa-bench/1.0",
                        nominatim_rate_per_second=rate, geocode_batch_size=100)
    n = int(rate * seconds)
    # Houses only (distinct addresses): one request per household.
    out = run_job(engine, settings, {"provider": "nominatim", "limit": n})
    arrivals = stub.arrivals("/search")
    achieved, worst, ok = judge_rate(arrivals, rate)
    print(f"nominatim  households={out['counts']['processed']:,} "
          f"requests={len(arrivals):,} in {out['seconds']:.1f}s  "
          f"achieved={achieved:.2f}/s of {rate:g}/s ({achieved / rate:.1%})  "
          f"max in any 1-s window={worst} (limit {rate:g})  matched={out['counts']['matched']:,}"
          f"  {'OK' if ok else 'MISSED'}")
    return ok and out["failure"] is None


def bench_census(engine: sa.Engine, stub: StubProcess, batch: int) -> bool:
    reset(engine)
    settings = Settings(census_base_url=stub.census_url, census_batch_size=batch,
                        geocode_batch_size=batch, census_rate_per_second=1.0)
    out = run_job(engine, settings, {"provider": "census"})
    arrivals = stub.arrivals("/geocoder")
    rows = sum(len(r.rows) for r in stub.recorded("/geocoder"))
    achieved, worst, _ = judge_rate(arrivals, 1.0)
    ok = worst <= 1 and out["failure"] is None
    c = out["counts"]
    print(f"census     households={c['processed']:,} in {out['seconds']:.1f}s "
          f"({c['processed'] / out['seconds']:,.0f}/s)  requests={len(arrivals)} "
          f"rows sent={rows:,} (cache hits {c['cache_hits']:,})  "
          f"max in any 1-s window={worst} (limit 1)  matched={c['matched']:,}  "
          f"{'OK' if ok else 'MISSED'}")
    return ok


def bench_local(engine: sa.Engine, batch: int) -> bool:
    reset(engine)
    settings = Settings(geocode_batch_size=batch)  # offline batches: max(this, 1000)
    out = run_job(engine, settings, {"provider": "local"})
    c = out["counts"]
    rate = c["processed"] / out["seconds"]
    ok = rate >= LOCAL_TARGET and out["failure"] is None
    cpu_rate = c["processed"] / out["cpu_seconds"]
    print(f"local      households={c['processed']:,} (batch {max(batch, 1000)}) "
          f"in {out['seconds']:.2f}s "
          f"= {rate:,.0f} households/s wall, {cpu_rate:,.0f}/s of CPU time "
          f"(target {LOCAL_TARGET:,})  matched={c['matched']:,} no_match={c['no_match']:,}  "
          f"{'OK' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=20.0, help="single-address limit, req/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="single-address sub-run")
    parser.add_argument("--census-batch", type=int, default=2000)
    parser.add_argument("--local-batch", type=int, nargs="*", default=[100, 5000],
                        help="geocode_batch_size values (offline batches are at least 1000)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        populate(engine, args.households)
        tune_garbage_collector()  # as a worker process runs its batches
        print(f"{args.households:,} households on SQLite ({url})")
        results = [bench_local(engine, b) for b in args.local_batch]
        with StubProcess(synthetic=True) as stub:
            results.append(bench_nominatim(engine, stub, args.rate, args.seconds))
        with StubProcess(synthetic=True) as stub:
            results.append(bench_census(engine, stub, args.census_batch))
        engine.dispose()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
