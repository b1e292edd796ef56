"""The demo town ``cocoa quickstart`` loads: one small, coherent place.

Why one town rather than the separate samples: the point of the demo is to
show the three job types working *together* - voters become households,
parcels link to those households by address, and the offline geocoder places
them on their parcels. That only happens when the voter file's residence
addresses are the parcels' situs addresses, so both files are written here
from one :func:`cocoa.samples.parcels.generate_town` town:

* the parcels as GeoJSON, with that generator's mess (a bow-tie polygon, a
  detached back lot, stacked condos, a placeholder situs, a duplicate APN, an
  empty geometry) and apartment buildings, one parcel each, whose flats link
  by the building's address;
* a North Carolina statewide voter file (tab, every field quoted, Latin-1)
  of the people living there, addresses spelled the way voters write them
  (``North Oak Street Apt 2`` for ``N OAK ST UNIT 2``, runs of spaces), plus a
  little of a real file's mess: ragged rows, a repeated voter id, a bad date.

:func:`load_demo` then runs the three jobs through the real engine with an
in-process worker. It is offline, takes a few seconds, and runs once per
database.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from rich.console import Console

from cocoa.db.engine import reading
from cocoa.db.tables import jobs
from cocoa.domain.voter_files import NC_STATEWIDE
from cocoa.jobs.manager import JobManager, UploadSource
from cocoa.jobs.model import Job, Status
from cocoa.jobs.worker import Worker
from cocoa.samples.parcels import SampleHousehold, Town, generate_town, to_geojson
from cocoa.samples.voters import FIRST_NAMES, LAST_NAMES

DEMO_USER = "demo"
DEMO_TYPES = ("import_voters", "parcel_import", "geocode_households")
DEMO_PARCELS = 300
DEMO_SEED = 2024
DEMO_APARTMENTS = 0.1  # share of lots that are apartment buildings (flats link by building)
JOB_DEADLINE_SECONDS = 120.0  # per job; the demo jobs take well under a second each
POLL_SECONDS = 0.05


# --------------------------------------------------------------------------- the files


@dataclass(frozen=True, slots=True)
class VoterFile:
    """An NC statewide file and the facts about it tests and messages use."""

    data: bytes
    rows: int  # data rows, bad ones included
    households: int  # distinct residences written


@dataclass(frozen=True, slots=True)
class DemoTown:
    town: Town
    voters: VoterFile
    parcels: bytes  # GeoJSON


def build_town(n_parcels: int = DEMO_PARCELS, seed: int = DEMO_SEED) -> DemoTown:
    """The demo's files; the same arguments always give the same bytes."""
    town = generate_town(n_parcels, seed=seed, spelling="usps", apartments=DEMO_APARTMENTS)
    voters = nc_voter_file(town.households, seed=seed, id_prefix="DM")
    return DemoTown(town, voters, to_geojson(town))


def nc_voter_file(
    homes: Sequence[SampleHousehold], *, seed: int, id_prefix: str,
    voters_per_home: tuple[int, int] = (1, 3), mess: bool = True,
) -> VoterFile:
    """The people living at ``homes``, as an NC statewide voter file.

    ``id_prefix`` keeps the voter ids (``ncid``) of different files apart, so
    files meant to be independent never update each other's voters.
    """
    rng = random.Random(seed)
    people = _people(homes, rng, voters_per_home, id_prefix)
    lines = [_nc_line(values) for values in people]
    if mess:
        _add_mess(lines, people, rng)
    header = _nc_line(list(NC_STATEWIDE.columns))
    text = "\n".join([header, *lines]) + "\n"
    return VoterFile(text.encode("latin-1"), len(lines), len(homes))


def _people(homes: Sequence[SampleHousehold], rng: random.Random,
            per_home: tuple[int, int], id_prefix: str) -> list[list[str]]:
    rows: list[list[str]] = []
    for home in homes:
        last = rng.choice(LAST_NAMES)
        for _ in range(rng.randint(*per_home)):
            rows.append(_nc_values(home, len(rows) + 1, rng.choice(FIRST_NAMES), last,
                                   id_prefix, rng))
    return rows


def _nc_values(home: SampleHousehold, n: int, first: str, last: str, id_prefix: str,
               rng: random.Random) -> list[str]:
    """One voter, every column of the layout (unused ones empty, as NCSBE has them)."""
    street = home.street if not home.unit else f"{home.street} APT {home.unit}"
    born = rng.randint(1940, 2006)
    values = {
        "county_id": "32", "county_desc": "DURHAM", "voter_reg_num": f"{n:012d}",
        "ncid": f"{id_prefix}{n:07d}", "last_name": last, "first_name": first,
        "middle_name": rng.choice(("", "", "ANN", "LEE", "MARIE", "JAMES")),
        "status_cd": "A", "voter_status_desc": "ACTIVE",
        "res_street_address": _nc_spacing(street, rng), "res_city_desc": home.city.upper(),
        "state_cd": home.state, "zip_code": home.zip_code,
        "registr_dt": f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1990, 2024)}",
        "race_code": rng.choice("WBAOU"), "ethnic_code": rng.choice(("NL", "HL", "UN")),
        "party_cd": rng.choice(("DEM", "REP", "UNA", "UNA", "LIB", "GRE")),
        "gender_code": rng.choice("MFU"), "birth_year": str(born),
        "age_at_year_end": str(2024 - born), "birth_state": rng.choice(("NC", "VA", "NY", "")),
        "drivers_lic": rng.choice("YN"), "precinct_abbrv": f"{home.zip_code[-2:]}-0{rng.randint(1, 3)}",
        "municipality_desc": home.city.upper(),
    }
    return [values.get(column, "") for column in NC_STATEWIDE.columns]


def _nc_spacing(street: str, rng: random.Random) -> str:
    """NCSBE pads the parts of ``res_street_address`` with runs of spaces."""
    if rng.random() < 0.3:
        return "  ".join(street.split(" "))
    return street


def _nc_line(values: Iterable[str]) -> str:
    return "\t".join(f'"{v}"' for v in values)


def _add_mess(lines: list[str], people: list[list[str]], rng: random.Random) -> None:
    """A real file's mess, a little of it: an impossible registration date
    (imported with a warning), a voter listed again after moving next door
    (the later row wins) and two ragged rows (item errors)."""
    columns = NC_STATEWIDE.columns
    dated = rng.randrange(len(people))
    people[dated][columns.index("registr_dt")] = "02/30/2019"
    lines[dated] = _nc_line(people[dated])
    mover = list(people[rng.randrange(len(people) // 2)])
    neighbour = people[rng.randrange(len(people) // 2, len(people))]
    for column in ("res_street_address", "res_city_desc", "zip_code", "precinct_abbrv"):
        mover[columns.index(column)] = neighbour[columns.index(column)]
    lines.append(_nc_line(mover))
    for _ in range(2):
        victim = people[rng.randrange(len(people))]
        lines.insert(rng.randrange(len(lines)), _nc_line(victim[:-2]))


# --------------------------------------------------------------------------- loading


def load_demo(manager: JobManager, console: Console) -> None:
    """Load the demo town through the engine, once per database.

    Skips quietly when demo jobs exist (quickstart runs on every ``make
    run``). The jobs run one after another because each needs the previous
    one's data: parcel linking needs the households, offline geocoding needs
    the parcels. A worker thread runs them here so the data is there when
    the server starts; a job that has not finished by the deadline is handed
    back to the queue, and the server's worker finishes it.
    """
    if demo_loaded(manager.engine):
        return
    demo = build_town()
    console.print(f"Loading the demo town: {demo.voters.rows} voter rows, "
                  f"{len(demo.town.parcels)} parcels ...", highlight=False)
    worker = Worker(manager, worker_id=f"{DEMO_USER}-worker", types=list(DEMO_TYPES))
    thread = worker.start_in_thread()
    try:
        for step in _steps(demo):
            job = step(manager)
            if not _follow(manager, job, console):
                break
    finally:
        worker.stop()
        thread.join(timeout=JOB_DEADLINE_SECONDS)


def demo_loaded(engine: sa.Engine) -> bool:
    """Any job ever created by the demo, archived ones included."""
    with reading(engine) as conn:
        found = conn.execute(sa.select(jobs.c.id).where(jobs.c.created_by == DEMO_USER).limit(1))
        return found.first() is not None


Step = Callable[[JobManager], Job]


def _steps(demo: DemoTown) -> list[Step]:
    def voters(manager: JobManager) -> Job:
        upload = UploadSource(io.BytesIO(demo.voters.data), "ncvoter_demo.txt", "text/plain")
        return manager.create("import_voters", {"format": "auto", "mode": "full"},
                              created_by=DEMO_USER, upload=upload)

    def parcels(manager: JobManager) -> Job:
        upload = UploadSource(io.BytesIO(demo.parcels), "demo_parcels.geojson",
                              "application/geo+json")
        return manager.create("parcel_import", {"source": "demo_town"}, created_by=DEMO_USER,
                              upload=upload)

    def geocode(manager: JobManager) -> Job:
        return manager.create("geocode_households", {"provider": "local", "only_missing": True},
                              created_by=DEMO_USER)

    return [voters, parcels, geocode]


def _follow(manager: JobManager, job: Job, console: Console) -> bool:
    """Wait for ``job`` to end (poll with a deadline); one line of outcome.
    Returns whether the next step may start."""
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    while not job.is_terminal and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)  # polling interval of a deadline loop
        job = manager.get(job.id)
    if not job.is_terminal:
        console.print(f"  {job.type}: still {job.status.value} after {JOB_DEADLINE_SECONDS:.0f} s; "
                      "the server's worker will finish it", highlight=False)
        return False
    if job.status is not Status.COMPLETED:
        console.print(f"  [red]{job.type} {job.status.value}[/]: {job.error or ''}", highlight=False)
        return False
    console.print(f"  {job.type}: {_summary(job)}", highlight=False)
    return True


def _summary(job: Job) -> str:
    r: dict[str, Any] = job.result
    if job.type == "import_voters":
        text = f"{r.get('voters_created', 0)} voters in {r.get('households_created', 0)} households"
    elif job.type == "parcel_import":
        linked = sum(r.get(f"households_linked_{m}", 0) for m in ("address", "building",
                                                                   "location"))
        text = f"{r.get('parcels_imported', 0)} parcels, {linked} households linked"
    else:
        text = f"{r.get('matched', 0)} households geocoded, {r.get('no_match', 0)} without a match"
    return text + (f" ({job.error_count} item errors or warnings)" if job.error_count else "")
