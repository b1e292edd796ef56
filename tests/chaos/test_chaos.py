"""Chaos: all three job types at once on PostgreSQL while workers die.

Three real ``cocoa worker`` processes share one PostgreSQL database. One job
of each type runs at the same time while a driver SIGKILLs a random worker
every 1-3 s (and starts a replacement) and restarts the PostgreSQL server
once mid-run. Afterwards every job must have completed and the data must
equal a clean run of the same steps (one undisturbed worker, SQLite),
ignoring ids and timestamps: nothing imported twice, nothing lost.

Why the final state is deterministic although the jobs overlap - the three
jobs are made independent:

* voter file A (the town's residents) is imported first, before any chaos;
* ``geocode_households`` (``census`` against a loopback stub) is created
  next, so its selection is exactly A's households. The stub knows each of
  them at a point derived from its address but placed on the coast, 150 km
  from the parcel town (the test checks), so point-in-polygon linking never
  applies and linking does not depend on when a household got its
  coordinates;
* ``parcel_import`` of the town links A's households by address, which
  geocoding does not change;
* voter file B lives in another ZIP code with other voter ids: its
  households never match a parcel (linking leaves them alone whenever it
  sees them) and its voters never touch A's.

Only counters that depend on timing are not compared: how many households
the linking walk saw (B's may or may not exist yet) and how many requests
the geocoder sent (a batch lost in a crash is asked again).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import PG_ADMIN_URL, migrated_manager, require_postgres
from tests.process.test_worker_processes import Workers, wait_for
from tests.stubs.geocoder_stub import StubProcess

from cocoa.db.tables import households, job_errors, jobs, parcels, voters
from cocoa.jobs.manager import JobManager, UploadSource
from cocoa.jobs.model import Job, Status
from cocoa.jobtypes.geocode_households import build_request
from cocoa.samples.demo import VoterFile, nc_voter_file
from cocoa.samples.parcels import generate_town, to_shapefile_zip

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WORKERS = 3
MIN_KILLS, MAX_KILLS = 12, 20
KILL_INTERVAL = (1.0, 3.0)  # seconds between kills
PG_RESTART_AFTER_KILL = 5  # restart PostgreSQL right after this kill
TOWN_PARCELS = 4000
B_HOMES = 6000
FINISH_TIMEOUT = 180.0

WORKER_ENV = {
    "COCOA_LEASE_SECONDS": "3", "COCOA_BATCH_SIZE": "100", "COCOA_VOTER_BATCH_SIZE": "100",
    "COCOA_PARCEL_BATCH_SIZE": "100",
    "COCOA_POISON_LIMIT": "1000",
    "COCOA_PROVIDER_BACKOFF_SECONDS": "0.2", "COCOA_PROVIDER_MAX_BACKOFF_SECONDS": "2",
}
# Census requests per second (one request per 100 households). It cannot
# change any result; under chaos it is low so that the geocoding job alone
# lasts 40+ s and the whole kill budget lands on running jobs.
CLEAN_CENSUS_RATE, CHAOS_CENSUS_RATE = "20", "1"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    voters_a: VoterFile
    voters_b: VoterFile
    parcels: bytes  # zipped shapefile, NC State Plane feet: reprojected on import


def make_inputs() -> Inputs:
    town = generate_town(TOWN_PARCELS, seed=31, spelling="usps")
    elsewhere = generate_town(B_HOMES, seed=32, spelling="usps")
    b_homes = [replace(h, city="FARAWAY", zip_code="28999") for h in elsewhere.households]
    return Inputs(
        voters_a=nc_voter_file(town.households, seed=31, id_prefix="AA"),
        voters_b=nc_voter_file(b_homes, seed=32, id_prefix="BB", voters_per_home=(2, 5)),
        parcels=to_shapefile_zip(town),
    )


@pytest.fixture(scope="module")
def inputs() -> Inputs:
    return make_inputs()


@pytest.fixture
def chaos_pg_url() -> Iterator[str]:
    """Like conftest's ``pg_url`` (fails in CI without PostgreSQL), but its
    admin engine pings pooled connections: the one it opened before the
    server restart is dead by teardown, and ``DROP DATABASE`` must not fail
    on it."""
    require_postgres()
    name = f"cocoa_chaos_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module")
def stub() -> Iterator[StubProcess]:
    with StubProcess() as server:
        yield server


# --------------------------------------------------------------------------- the steps


def upload(data: bytes, name: str) -> UploadSource:
    return UploadSource(io.BytesIO(data), name, None)


def import_a(manager: JobManager, inputs: Inputs) -> Job:
    return manager.create("import_voters", {"format": "auto", "mode": "full"}, created_by="chaos",
                          upload=upload(inputs.voters_a.data, "ncvoter_a.txt"))


def start_concurrent_jobs(manager: JobManager, inputs: Inputs) -> list[Job]:
    """Geocoding first: its selection is fixed at creation, so it is A's households."""
    geocode = manager.create("geocode_households", {"provider": "census"}, created_by="chaos")
    parcel = manager.create("parcel_import", {"source": "town"}, created_by="chaos",
                            upload=upload(inputs.parcels, "town.zip"))
    voters_b = manager.create("import_voters", {"format": "auto", "mode": "full"},
                              created_by="chaos", upload=upload(inputs.voters_b.data, "ncvoter_b.txt"))
    return [geocode, parcel, voters_b]


def far_point(key: str) -> tuple[float, float]:
    """A stable point for an address, on the coast near Wilmington: 150 km
    from the parcel town near Durham."""
    digest = hashlib.sha256(key.encode()).digest()
    return (34.0 + int.from_bytes(digest[:4], "big") / 2**32 * 0.5,
            -77.9 + int.from_bytes(digest[4:8], "big") / 2**32 * 0.5)


def teach_stub(stub: StubProcess, engine: sa.Engine) -> int:
    """Put every household in the stub's address book, exactly as the census
    provider will ask for it (the street without the unit)."""
    with engine.connect() as conn:
        rows = list(conn.execute(sa.select(households.c.id, households.c.address_key,
                                           households.c.street_line, households.c.unit,
                                           households.c.city, households.c.state,
                                           households.c.zip_code)))
    for row in rows:
        request = build_request(row)
        stub.add(request.street, request.city, request.state, request.zip_code,
                 *far_point(request.street + "|" + (request.zip_code or "")))
    return len(rows)


def finished(manager: JobManager, job_ids: list[str]) -> bool:
    """All jobs terminal; a database that is restarting counts as 'not yet'."""
    try:
        return all(manager.get(i).is_terminal for i in job_ids)
    except sa.exc.OperationalError:
        return False


# --------------------------------------------------------------------------- chaos


@dataclass
class Figures:
    kills: int = 0
    kills_of_job_holders: int = 0  # the victim held at least one lease
    pg_restarts: int = 0
    restarted_mid_run: bool = False
    refused_to_start: int = 0  # started while PostgreSQL was down: exit 2, as documented
    died_on_their_own: list[int] = field(default_factory=list)  # running workers that exited
    log: list[str] = field(default_factory=list)


def restart_postgres() -> None:
    """The real server, restarted (fast shutdown: every connection is cut)."""
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, timeout=120, capture_output=True)


def postgres_restartable() -> bool:
    return shutil.which("pg_ctlcluster") is not None and Path("/etc/postgresql").is_dir()


def wait_for_postgres(manager: JobManager) -> None:
    def up() -> bool:
        try:
            with manager.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except sa.exc.OperationalError:
            return False

    wait_for(up, timeout=60, what="PostgreSQL back after restart")


def holds_a_lease(manager: JobManager, pid: int) -> bool:
    """Worker ids are ``host:pid:random``."""
    try:
        with manager.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
                jobs.c.lease_owner.like(f"%:{pid}:%"))).scalar_one() > 0
    except sa.exc.OperationalError:
        return False


def kill_one(manager: JobManager, group: Workers, env: dict[str, str], rng: random.Random,
             figures: Figures) -> int:
    """SIGKILL a random live worker, then start workers until WORKERS live
    (a worker started while the database restarts exits at once)."""
    victim = rng.choice([p for p in group.procs if p.poll() is None])
    figures.kills_of_job_holders += holds_a_lease(manager, victim.pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    figures.kills += 1
    while sum(p.poll() is None for p in group.procs) < WORKERS:
        group.start(**env)
    return victim.pid


def exits_on_their_own(group: Workers, killed: set[int], figures: Figures) -> None:
    """Workers that ended without our SIGKILL. Refusing to start while the
    database is down is the CLI's documented behaviour (exit 2); a worker
    that was running and exited is a bug: workers must ride out outages."""
    for index, proc in enumerate(group.procs):
        if proc.poll() is None or proc.pid in killed:
            continue
        log = group.log(index)
        if proc.returncode == 2 and "Cannot reach the database" in log and " started (types" not in log:
            figures.refused_to_start += 1
        else:
            figures.died_on_their_own.append(proc.pid)


def unleash(manager: JobManager, group: Workers, job_ids: list[str], env: dict[str, str],
            seed: int = 7) -> Figures:
    """Kill a random live worker every 1-3 s and start a replacement; restart
    PostgreSQL once. Stops after MAX_KILLS or when every job has ended."""
    rng = random.Random(seed)
    figures = Figures()
    killed: set[int] = set()
    started = time.monotonic()
    while figures.kills < MAX_KILLS and not finished(manager, job_ids):
        time.sleep(rng.uniform(*KILL_INTERVAL))  # the chaos rhythm, not synchronisation
        killed.add(kill_one(manager, group, env, rng, figures))
        figures.log.append(f"{time.monotonic() - started:5.1f}s kill #{figures.kills}")
        if figures.kills == PG_RESTART_AFTER_KILL:
            figures.restarted_mid_run = not finished(manager, job_ids)
            restart_postgres()
            wait_for_postgres(manager)
            figures.pg_restarts += 1
            figures.log.append(f"{time.monotonic() - started:5.1f}s PostgreSQL restarted")
    exits_on_their_own(group, killed, figures)
    return figures


# --------------------------------------------------------------------------- snapshots


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


TIMESTAMPS = ("created_at", "updated_at", "geocoded_at")


def _canonical(row: Any, drop: tuple[str, ...], **replace_with: Any) -> str:
    values = {k: v for k, v in row._mapping.items() if k not in drop and k not in TIMESTAMPS}
    values.update(replace_with)
    return _json(values)


def snapshot(engine: sa.Engine) -> dict[str, Counter[str]]:
    """Every domain row as canonical text, without ids and timestamps;
    foreign keys replaced by the natural key they point at."""
    with engine.connect() as conn:
        home_rows = list(conn.execute(sa.select(households)))
        parcel_rows = list(conn.execute(sa.select(parcels)))
        voter_rows = list(conn.execute(sa.select(voters)))
    apn = {r.id: f"{r.source}/{r.apn}" for r in parcel_rows}
    home = {r.id: r.address_key for r in home_rows}
    return {
        "voters": Counter(_canonical(r, ("id", "import_job_id", "household_id"),
                                     household=home.get(r.household_id)) for r in voter_rows),
        "households": Counter(_canonical(r, ("id", "parcel_id"), parcel=apn.get(r.parcel_id))
                              for r in home_rows),
        "parcels": Counter(_canonical(r, ("id", "import_job_id", "geometry_wkb"),
                                      geometry=bytes(r.geometry_wkb).hex()) for r in parcel_rows),
    }


def errors_by_job(engine: sa.Engine, job_ids: list[str]) -> list[Counter[str]]:
    with engine.connect() as conn:
        return [Counter(_json([r.item_ref, r.code, r.severity, r.message]) for r in conn.execute(
            sa.select(job_errors).where(job_errors.c.job_id == job_id))) for job_id in job_ids]


STABLE_COUNTERS = {
    "import_voters": ("rows_read", "item_errors", "item_warnings", "rows_superseded",
                      "voters_created", "voters_updated", "voters_unchanged", "households_created"),
    "parcel_import": ("parcels_imported", "parcels_updated", "parcels_repaired", "item_errors",
                      "item_warnings"),
    "geocode_households": ("matched", "no_match", "tie", "errors"),
}


def stable_result(job: Job) -> dict[str, Any]:
    return {k: job.result.get(k) for k in STABLE_COUNTERS[job.type]}


# --------------------------------------------------------------------------- runs


@dataclass
class Run:
    manager: JobManager
    jobs: list[Job]
    figures: Figures
    seconds: float  # from the concurrent jobs' creation to the last one's end


def run_steps(db_url: str, data_dir: Path, inputs: Inputs, stub: StubProcess,
              env: dict[str, str], *, workers: int, chaos: bool) -> Run:
    manager = migrated_manager(db_url)
    group = Workers(db_url, data_dir)
    figures = Figures()
    try:
        for _ in range(workers):
            group.start(**env)
        first = import_a(manager, inputs)
        wait_for(lambda: manager.get(first.id).is_terminal, timeout=120, what="voter file A")
        teach_stub(stub, manager.engine)
        started = time.monotonic()
        created = start_concurrent_jobs(manager, inputs)
        ids = [first.id, *(j.id for j in created)]
        if chaos:
            figures = unleash(manager, group, ids, env)
        wait_for(lambda: finished(manager, ids), timeout=FINISH_TIMEOUT, what="every job ending")
    finally:
        group.stop_all()
    return Run(manager, [manager.get(i) for i in ids], figures, time.monotonic() - started)


def assert_points_outside_town(engine: sa.Engine) -> None:
    """The design's premise: no geocoded point can fall in a parcel."""
    with engine.connect() as conn:
        box = conn.execute(sa.select(sa.func.min(parcels.c.min_lon), sa.func.min(parcels.c.min_lat),
                                     sa.func.max(parcels.c.max_lon), sa.func.max(parcels.c.max_lat))).one()
        inside = conn.execute(sa.select(sa.func.count()).select_from(households).where(
            households.c.longitude.between(box[0], box[2]), households.c.latitude.between(box[1], box[3]),
        )).scalar_one()
        located = conn.execute(sa.select(sa.func.count()).select_from(households).where(
            households.c.parcel_link_method == "location")).scalar_one()
    assert inside == 0 and located == 0


# --------------------------------------------------------------------------- the test


def test_three_job_types_survive_kills_and_a_postgres_restart(
    chaos_pg_url: str, tmp_path: Path, inputs: Inputs, stub: StubProcess,
) -> None:
    if not postgres_restartable():
        pytest.fail("the chaos test restarts PostgreSQL with pg_ctlcluster, which is missing here")
    env = {**WORKER_ENV, "COCOA_CENSUS_BASE_URL": stub.census_url}
    (tmp_path / "clean").mkdir()
    (tmp_path / "chaos").mkdir()
    clean = run_steps(f"sqlite:///{tmp_path / 'clean.db'}", tmp_path / "clean", inputs, stub,
                      {**env, "COCOA_CENSUS_RATE_PER_SECOND": CLEAN_CENSUS_RATE},
                      workers=1, chaos=False)
    chaos = run_steps(chaos_pg_url, tmp_path / "chaos", inputs, stub,
                      {**env, "COCOA_CENSUS_RATE_PER_SECOND": CHAOS_CENSUS_RATE},
                      workers=WORKERS, chaos=True)
    try:
        report(chaos, clean)
    finally:
        chaos.manager.dispose()
        clean.manager.dispose()


def compare(chaos: Run, clean: Run) -> tuple[int, int]:
    """Rows (and item errors, per job) in the chaos run but not the clean
    one - committed twice - and the other way round - lost."""
    chaos_rows, clean_rows = snapshot(chaos.manager.engine), snapshot(clean.manager.engine)
    pairs = [(chaos_rows[k], clean_rows[k]) for k in clean_rows]
    pairs += zip(errors_by_job(chaos.manager.engine, [j.id for j in chaos.jobs]),
                 errors_by_job(clean.manager.engine, [j.id for j in clean.jobs]), strict=True)
    duplicates = sum(sum((a - b).values()) for a, b in pairs)
    lost = sum(sum((b - a).values()) for a, b in pairs)
    return duplicates, lost


def report(chaos: Run, clean: Run) -> None:
    duplicates, lost = compare(chaos, clean)
    figures = chaos.figures
    print("\n".join(figures.log))
    print(f"chaos: {figures.kills} kills survived ({figures.kills_of_job_holders} of workers "
          f"holding a job; {sum(j.crash_count for j in chaos.jobs)} leases expired), "
          f"{figures.pg_restarts} PostgreSQL restart ({figures.refused_to_start} workers refused to "
          f"start meanwhile), "
          f"{sum(j.status is Status.COMPLETED for j in chaos.jobs)}/{len(chaos.jobs)} jobs completed, "
          f"{sum(j.processed for j in chaos.jobs)} items, {duplicates} duplicates, {lost} lost; "
          f"jobs took {chaos.seconds:.0f} s (clean run {clean.seconds:.0f} s)")
    for job, reference in zip(chaos.jobs, clean.jobs, strict=True):
        assert reference.status is Status.COMPLETED, (reference.type, reference.error)
        assert job.status is Status.COMPLETED, (job.type, job.error)
        assert job.processed == job.total, (job.type, job.processed, job.total)
        assert stable_result(job) == stable_result(reference), job.type
    assert (duplicates, lost) == (0, 0)
    assert_points_outside_town(clean.manager.engine)
    assert_points_outside_town(chaos.manager.engine)
    assert figures.pg_restarts == 1 and figures.restarted_mid_run
    assert MIN_KILLS <= figures.kills <= MAX_KILLS and figures.kills_of_job_holders > 0
    assert figures.died_on_their_own == []  # workers outlive the database restart
    assert sum(j.attempt for j in chaos.jobs) > len(chaos.jobs)  # some job really was taken over
