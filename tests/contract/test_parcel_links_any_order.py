"""Household-parcel links do not depend on the order of the jobs (issue 15).

A generated town where apartments share one building parcel (their flats
carry units no parcel has), stacked condos have a parcel per unit, some
households are only findable by their point, and a few by nothing. Its voter
file, its parcel file and a geocoder that knows where every geocodable
household is (the loopback census stub) go through the real job types - the
voter import, the parcel import, the geocoding job - in each order a county
might run them. Whatever the order, every household must end on the parcel
the town says, by the method it says, on both backends.

The jobs are driven by the engine's batch loop in the test process
(``tests/contract/driving.py``): each batch's writes in a transaction, then
its checkpoint and counters.
"""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from tests.contract import driving
from tests.contract.driving import Run
from tests.stubs.geocoder_stub import GeocoderStub

from cocoa.config import Settings
from cocoa.db.tables import households, jobs, parcels
from cocoa.domain import parcel_links as pl
from cocoa.domain.addresses import household_key
from cocoa.jobs.types import CreateContext, JobType
from cocoa.jobtypes.geocode_households import GeocodeHouseholds, build_request
from cocoa.jobtypes.import_voters import ImportVoters
from cocoa.jobtypes.parcel_import import ParcelImport
from cocoa.samples.demo import nc_voter_file
from cocoa.samples.parcels import (
    SampleHousehold,
    SampleParcel,
    Town,
    flat_unit,
    generate_town,
    lot_parcel,
    to_geojson,
)

VOTERS, PARCELS, GEOCODE = ImportVoters(), ParcelImport(), GeocodeHouseholds()
ORDERS = {
    "voters-parcels-geocode": ("voters", "parcels", "geocode"),
    "parcels-voters-geocode": ("parcels", "voters", "geocode"),
    "voters-geocode-parcels": ("voters", "geocode", "parcels"),
}
Link = tuple[str | None, str | None]  # (APN, method)


@pytest.fixture
def stub() -> Iterator[GeocoderStub]:
    with GeocoderStub() as server:
        yield server


# ------------------------------------------------------------------ the town's truth


def key_of(home: SampleHousehold) -> str:
    return household_key(home.street, home.city, home.state, home.zip_code, home.unit)


def expected_links(homes: list[SampleHousehold]) -> dict[str, Link]:
    return {key_of(h): (h.expected_apn, h.expected_method) for h in homes}


def truth_points(homes: list[SampleHousehold]) -> dict[str, tuple[float, float]]:
    return {key_of(h): (h.latitude, h.longitude) for h in homes
            if h.latitude is not None and h.longitude is not None}


def stored_links(engine: sa.Engine) -> dict[str, Link]:
    query = (sa.select(households.c.address_key, parcels.c.apn, households.c.parcel_link_method)
             .select_from(households.outerjoin(parcels, households.c.parcel_id == parcels.c.id)))
    with engine.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(query)}


# ------------------------------------------------------------------ the three jobs


@dataclass
class Jobs:
    """One database, one town's files, and each job's run once it ran."""

    engine: sa.Engine
    stub: GeocoderStub
    voter_file: bytes
    parcel_file: bytes
    points: dict[str, tuple[float, float]]
    runs: dict[str, Run]

    def run(self, step: str) -> Run:
        self.runs[step] = getattr(self, step)()
        assert self.runs[step].done
        return self.runs[step]

    def voters(self) -> Run:
        return drive_job(self.engine, VOTERS, {"format": "auto", "mode": "full"},
                         self.voter_file, 97)

    def parcels(self) -> Run:
        return import_parcels(self.engine, self.parcel_file)

    def geocode(self, only_missing: bool = True) -> Run:
        """Census (the loopback stub) asked for every household; the stub
        knows the point of each household the town places, by the street
        the provider sends (a flat's is its building's)."""
        with self.engine.connect() as conn:
            rows = list(conn.execute(sa.select(households)))
        for row in rows:
            if row.address_key in self.points:
                request = build_request(row)
                self.stub.add(request.street, request.city, request.state, request.zip_code,
                              *self.points[row.address_key])
        settings = Settings(census_base_url=self.stub.census_url, census_rate_per_second=100.0,
                            geocode_batch_size=40)
        job_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        request_params = {"provider": "census", "only_missing": only_missing}
        with self.engine.begin() as conn:  # the selection's rows need their job row
            conn.execute(sa.insert(jobs).values(
                id=job_id, type=GEOCODE.name, status="pending", request=request_params,
                params={}, result={}, timeout_seconds=3600.0, created_at=now, updated_at=now))
            params = GEOCODE.validate(CreateContext(conn, job_id, request_params, settings))
        return driving.drive(GEOCODE, self.engine, Run(job_id, params, b""), batch_size=40,
                             settings=settings)


def drive_job(engine: sa.Engine, job: JobType, request: dict[str, Any], data: bytes,
              batch: int) -> Run:
    """Validate in a creation transaction, then every batch to the end."""
    job_id = str(uuid.uuid4())
    with engine.begin() as conn:
        params = job.validate(CreateContext(conn=conn, job_id=job_id, params=dict(request),
                                            settings=Settings(), upload=io.BytesIO(data),
                                            upload_filename="upload"))
    json.dumps(params)  # storable
    return driving.drive(job, engine, Run(job_id, params, data), batch_size=batch)


def import_parcels(engine: sa.Engine, data: bytes) -> Run:
    return drive_job(engine, PARCELS, {"source": "county"}, data, 50)


def jobs_for(engine: sa.Engine, stub: GeocoderStub, parcel_list: list[SampleParcel],
             homes: list[SampleHousehold], seed: int = 1) -> Jobs:
    voter_file = nc_voter_file(homes, seed=seed, id_prefix="PL", mess=False).data
    return Jobs(engine, stub, voter_file, to_geojson(Town("nc_onemap", parcel_list)),
                truth_points(homes), {})


# ------------------------------------------------------------------ every order, one town


def apartment_town() -> Town:
    town = generate_town(160, seed=15, apartments=0.25)
    methods = Counter(h.expected_method for h in town.households)
    assert methods["building"] >= 40 and methods["address"] and methods["location"]
    assert methods[None] >= 2  # one never geocoded, one geocoded into a street
    assert any(p.kind == "condo" for p in town.final_parcels().values())
    return town


@pytest.mark.parametrize("order", list(ORDERS))
def test_every_household_ends_on_its_parcel_in_any_order(
    db_engine: sa.Engine, stub: GeocoderStub, order: str,
) -> None:
    town = apartment_town()
    run = jobs_for(db_engine, stub, town.parcels, town.households)
    for step in ORDERS[order]:
        run.run(step)

    expected = expected_links(town.households)
    assert len(expected) == len(town.households)  # one household per door
    assert stored_links(db_engine) == expected
    flats = [h for h in town.households if h.unit]
    assert flats and all(expected[key_of(h)][1] == "building" for h in flats)


def by_method(town: Town) -> Counter[str | None]:
    return Counter(h.expected_method for h in town.households)


def test_parcel_job_counts_links_by_method_and_the_unlinked_by_reason(
    db_engine: sa.Engine, stub: GeocoderStub,
) -> None:
    """Voters, then geocoding, then parcels: the parcel job decides every
    household and says how."""
    town = apartment_town()
    run = jobs_for(db_engine, stub, town.parcels, town.households)
    run.run("voters")
    run.run("geocode")
    result = run.run("parcels").result
    truth = by_method(town)
    never_geocoded = sum(1 for h in town.households
                         if h.expected_method is None and h.latitude is None)
    assert result["households_linked_address"] == truth["address"]
    assert result["households_linked_building"] == truth["building"]
    assert result["households_linked_location"] == truth["location"]
    assert result["households_unlinked"] == truth[None]
    assert result["households_unlinked_not_geocoded"] == never_geocoded >= 1
    assert result["households_unlinked_outside_parcels"] == truth[None] - never_geocoded >= 1
    assert run.runs["geocode"].result["households_linked_location"] == 0  # no parcels yet


def test_households_created_after_the_parcels_are_linked_by_the_voter_import(
    db_engine: sa.Engine, stub: GeocoderStub,
) -> None:
    """Parcels first (a GIS team's order): the voter import links what it
    creates by key, before any geocoding; geocoding then links by location
    only what no key linked, and says how many."""
    town = apartment_town()
    run = jobs_for(db_engine, stub, town.parcels, town.households)
    parcel_result = run.run("parcels").result
    assert parcel_result["households_linked_address"] == 0  # nobody lives here yet
    assert parcel_result["households_unlinked"] == 0
    voters = run.run("voters").result
    truth = by_method(town)
    assert voters["households_linked_address"] == truth["address"]
    assert voters["households_linked_building"] == truth["building"]
    after_voters = stored_links(db_engine)
    expected = expected_links(town.households)
    assert {k: v for k, v in after_voters.items() if v[1]} == {
        k: v for k, v in expected.items() if v[1] in pl.KEY_METHODS}

    geocoded = run.run("geocode").result
    assert geocoded["households_linked_location"] == truth["location"]
    assert stored_links(db_engine) == expected


# ------------------------------------------------------------------ condos, and units no parcel has


def condo_case() -> tuple[list[SampleParcel], list[SampleHousehold]]:
    """Lot 0: a condominium, one parcel per unit (1, 2) on one footprint, no
    parcel for the building. Lot 1: one building parcel. Lot 2: a building
    parcel and one unit's own parcel (2). Lot 4: no parcel. (A flat is placed
    wherever its building is: the geocoder is asked for the building.)"""
    condo = [lot_parcel(0, "1"), lot_parcel(0, "2")]
    plain, mixed = lot_parcel(1), [lot_parcel(2), lot_parcel(2, "2")]

    def home(p: SampleParcel, unit: str | None, link: Link, geocoded: bool = True
             ) -> SampleHousehold:
        lon, lat = p.interior
        street = " ".join(part for part in (str(p.number), p.predir, p.street, p.suffix) if part)
        return SampleHousehold(street, unit, p.city, "NC", p.zip_code,
                               lat if geocoded else None, lon if geocoded else None, *link)

    homes = [
        home(condo[0], "1", (condo[0].apn, "address")),  # unit to unit
        home(condo[1], "2", (condo[1].apn, "address")),  # its point is in unit 1's parcel too
        home(condo[0], "3", (condo[0].apn, "location")),  # no parcel for unit 3 nor the building
        home(lot_parcel(4), "1", (None, None), geocoded=False),  # no parcel, never placed
        home(plain, flat_unit(0), (plain.apn, "building")),  # no parcel carries the unit
        home(plain, flat_unit(5), (plain.apn, "building"), geocoded=False),
        home(plain, None, (plain.apn, "address")),
        home(mixed[1], "2", (mixed[1].apn, "address")),  # the unit's own parcel wins
        home(mixed[0], "7", (mixed[0].apn, "building")),  # else the building's
    ]
    return [*condo, plain, *mixed], homes


@pytest.mark.parametrize("order", list(ORDERS))
def test_condo_units_link_unit_to_unit_and_other_units_to_the_building(
    db_engine: sa.Engine, stub: GeocoderStub, order: str,
) -> None:
    parcel_list, homes = condo_case()
    run = jobs_for(db_engine, stub, parcel_list, homes)
    for step in ORDERS[order]:
        run.run(step)
    assert stored_links(db_engine) == expected_links(homes)


# ------------------------------------------------------------------ precedence


def test_a_later_point_never_replaces_a_link_by_key(
    db_engine: sa.Engine, stub: GeocoderStub,
) -> None:
    """address > building > location: re-geocoding every household to a
    point in *another* parcel moves only the location links."""
    parcel_list, homes = condo_case()
    run = jobs_for(db_engine, stub, parcel_list, homes)
    for step in ORDERS["voters-parcels-geocode"]:
        run.run(step)
    before = stored_links(db_engine)

    elsewhere = lot_parcel(3)
    moved = [replace(h, latitude=elsewhere.interior[1], longitude=elsewhere.interior[0])
             for h in homes]
    run.parcel_file = to_geojson(Town("nc_onemap", [*parcel_list, elsewhere]))
    run.run("parcels")  # lot 3 exists now; nothing moved yet
    assert stored_links(db_engine) == before
    run.points = truth_points(moved)
    result = run.geocode(only_missing=False).result

    after = stored_links(db_engine)
    for key, (apn, method) in before.items():
        if method in pl.KEY_METHODS:
            assert after[key] == (apn, method)
        else:
            assert after[key] == (elsewhere.apn, "location")
    assert result["households_linked_location"] == sum(
        1 for _apn, method in before.values() if method not in pl.KEY_METHODS)

    run.points = {key: (0.0, 0.0) for key in run.points}  # far from every parcel
    run.geocode(only_missing=False)
    final = stored_links(db_engine)
    assert final == {k: v if v[1] in pl.KEY_METHODS else (None, None) for k, v in before.items()}


# ------------------------------------------------------------------ the geocoder sees new parcels


def test_the_geocoders_parcels_follow_imports_between_its_batches(db_engine: sa.Engine) -> None:
    """A geocoding run keeps the parcels in memory across batches; a parcel
    imported or re-imported meanwhile must be seen by the next batch."""
    linker = pl.LocationLinker()
    first, second = lot_parcel(0), lot_parcel(1)
    with db_engine.begin() as conn:
        assert linker.current(conn).locate([second.interior[0]], [second.interior[1]])[0] == -1
    import_parcels(db_engine, to_geojson(Town("nc_onemap", [first, second])))
    with db_engine.begin() as conn:
        found = linker.current(conn).locate([second.interior[0]], [second.interior[1]])
        ids = dict(conn.execute(sa.select(parcels.c.apn, parcels.c.id)).all())
    assert found[0] == ids[second.apn]

    moved = replace(second, geometry=first.geometry)  # re-imported: now on lot 0's footprint
    import_parcels(db_engine, to_geojson(Town("nc_onemap", [first, moved])))
    with db_engine.begin() as conn:
        assert linker.current(conn).locate([second.interior[0]], [second.interior[1]])[0] == -1
