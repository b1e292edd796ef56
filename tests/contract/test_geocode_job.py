"""``geocode_households`` end to end on SQLite and PostgreSQL.

Until the real engine lands this file drives the job type with the loop the
engine will run: validate inside the creation transaction, plan, then
run_batch outside any transaction and ``batch.write`` in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from cocoa.config import Settings  # noqa: E402
from cocoa.db.tables import geocode_selections, households, jobs, parcels  # noqa: E402
from cocoa.domain.addresses import household_key  # noqa: E402
from cocoa.jobs.types import (  # noqa: E402
    Batch,
    CreateContext,
    ItemError,
    JobFailed,
    JobValidationError,
    RunContext,
    get_job_type,
)
from cocoa.jobtypes.geocode_households import GeocodeHouseholds, parse_params  # noqa: E402
from stubs.geocoder_stub import GeocoderStub, Reply  # noqa: E402

JOB = GeocodeHouseholds()
UA = "cocoa-canvas-tests/1.0 (tests@example.org)"


@pytest.fixture
def stub() -> Iterator[GeocoderStub]:
    with GeocoderStub() as server:
        yield server


def settings_for(stub: GeocoderStub | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "geocode_batch_size": 4, "census_rate_per_second": 50.0,
        "nominatim_rate_per_second": 50.0, "nominatim_user_agent": UA,
        "provider_max_retries": 2, "provider_backoff_seconds": 0.01,
    }
    if stub is not None:
        values |= {"census_base_url": stub.census_url, "nominatim_base_url": stub.url}
    return Settings(**(values | overrides))


# ------------------------------------------------------------------ data helpers
def add_household(conn: sa.Connection, street: str, *, unit: str | None = None,
                  city: str = "Raleigh", zip_code: str = "27601", county: str = "Wake",
                  precinct: str = "P-01", status: str | None = None,
                  lat: float | None = None, lon: float | None = None) -> int:
    now = datetime.now(UTC)
    return int(conn.execute(sa.insert(households).values(
        address_key=household_key(street, city, "NC", zip_code, unit), street_line=street,
        unit=unit, city=city, state="NC", zip_code=zip_code, county=county, precinct=precinct,
        geocode_status=status, latitude=lat, longitude=lon,
        geocode_provider="census" if status == "matched" else None,
        created_at=now, updated_at=now).returning(households.c.id)).scalar_one())


def add_parcel(conn: sa.Connection, apn: str, street: str, lat: float, lon: float) -> None:
    now = datetime.now(UTC)
    conn.execute(sa.insert(parcels).values(
        source="t", apn=apn, situs_address=street,
        situs_key=household_key(street, "Raleigh", "NC", "27601"), geometry_wkb=b"\x00",
        min_lon=lon, min_lat=lat, max_lon=lon, max_lat=lat, rep_lon=lon, rep_lat=lat,
        attributes={}, created_at=now, updated_at=now))


def household(engine: sa.Engine, hid: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(households).where(households.c.id == hid)).one()


# ------------------------------------------------------------------ the mini engine
@dataclass
class Run:
    job_id: str
    params: dict[str, Any]
    total: int
    batches: list[Batch] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[ItemError] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    failure: str | None = None


def create(engine: sa.Engine, settings: Settings, params: dict[str, Any]) -> str:
    """validate in the creation transaction, with the jobs row the FK needs."""
    job_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.insert(jobs).values(
            id=job_id, type=JOB.name, status="pending", request=params, params={}, result={},
            timeout_seconds=3600.0, created_at=now, updated_at=now))
        stored = JOB.validate(CreateContext(conn, job_id, params, settings))
        conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(params=stored))
    return job_id


def context(engine: sa.Engine, settings: Settings, job_id: str) -> RunContext:
    with engine.connect() as conn:
        params = conn.execute(sa.select(jobs.c.params).where(jobs.c.id == job_id)).scalar_one()
    return RunContext(job_id=job_id, params=params, settings=settings, engine=engine,
                      batch_size=settings.geocode_batch_size, upload_id=None, result={},
                      open_upload=lambda: None)  # type: ignore[arg-type, return-value]


def run(engine: sa.Engine, settings: Settings, job_id: str, *, max_batches: int = 1000,
        resume: Run | None = None) -> Run:
    ctx = context(engine, settings, job_id)
    state = resume or Run(job_id, ctx.params, JOB.plan(ctx))
    for _ in range(max_batches):
        try:
            batch = JOB.run_batch(ctx, state.checkpoint)
        except JobFailed as exc:
            state.failure = str(exc)
            return state
        with engine.begin() as conn:
            if batch.write is not None:
                batch.write(conn)
        state.batches.append(batch)
        state.checkpoint = batch.checkpoint
        state.errors += batch.errors
        for name, value in batch.counts.items():
            state.counts[name] = state.counts.get(name, 0) + value
        if batch.done:
            break
    return state


def rejected(engine: sa.Engine, settings: Settings, params: dict[str, Any]) -> JobValidationError:
    with pytest.raises(JobValidationError) as caught:
        create(engine, settings, params)
    return caught.value


# ------------------------------------------------------------------ tests
def test_registered_under_its_name() -> None:
    assert get_job_type("geocode_households").name == "geocode_households"


def test_local_job_geocodes_from_parcels(db_engine: sa.Engine) -> None:
    with db_engine.begin() as conn:
        add_parcel(conn, "1", "100 N MAIN ST", 35.1, -78.1)
        add_parcel(conn, "2", "200 OAK AVE", 35.2, -78.2)
        hits = [add_household(conn, "100 N MAIN ST"), add_household(conn, "200 OAK AVE"),
                add_household(conn, "100 N MAIN ST", unit="3")]
        miss = add_household(conn, "999 NOWHERE RD")
    settings = settings_for()
    job_id = create(db_engine, settings, {})
    result = run(db_engine, settings, job_id)

    assert result.total == 4 and result.failure is None
    assert result.counts == {"matched": 3, "no_match": 1, "tie": 0, "errors": 0,
                             "requests_sent": 0, "cache_hits": 0}
    assert [b.checkpoint for b in result.batches] == [{"seq": 4}]
    assert result.batches[-1].done
    first = household(db_engine, hits[0])
    assert (first.latitude, first.longitude, first.geocode_status) == (35.1, -78.1, "matched")
    assert (first.geocode_provider, first.geocode_quality) == ("local", "parcel")
    assert isinstance(first.geocoded_at, datetime) and first.geocoded_address == "100 N MAIN ST"
    assert household(db_engine, hits[2]).geocode_quality == "parcel_building"
    missed = household(db_engine, miss)
    assert (missed.geocode_status, missed.latitude) == ("no_match", None)


def test_census_job_dedupes_units_and_maps_shuffled_replies(
        db_engine: sa.Engine, stub: GeocoderStub) -> None:
    stub.add("5 ELM ST", "Raleigh", "NC", "27601", 35.5, -78.5)
    stub.add("6 ELM ST", "Raleigh", "NC", "27601", 35.6, -78.6)
    stub.add_tie("7 ELM ST", "Raleigh", "NC", "27601")
    with db_engine.begin() as conn:
        flats = [add_household(conn, "5 ELM ST", unit=str(u)) for u in range(1, 7)]
        other = add_household(conn, "6 ELM ST")
        tie = add_household(conn, "7 ELM ST")
        none = add_household(conn, "8 NOWHERE ST")
    settings = settings_for(stub)
    result = run(db_engine, settings, create(db_engine, settings, {"provider": "census"}))

    assert result.failure is None and result.total == 9
    assert result.counts["matched"] == 7
    assert (result.counts["tie"], result.counts["no_match"], result.counts["errors"]) == (1, 1, 0)
    sent = [row[1] for call in stub.recorded("/geocoder") for row in call.rows]
    assert sorted(sent) == ["5 ELM ST", "6 ELM ST", "7 ELM ST", "8 NOWHERE ST"]
    assert result.counts["requests_sent"] == len(stub.recorded("/geocoder")) == 3
    assert result.counts["cache_hits"] == 5  # flats 2..6 never went out
    for hid in flats:
        assert (household(db_engine, hid).latitude, household(db_engine, hid).longitude) == (
            35.5, -78.5)
    assert household(db_engine, other).latitude == 35.6
    assert household(db_engine, tie).geocode_status == "tie"
    assert household(db_engine, none).geocode_status == "no_match"


def test_chain_sends_only_local_misses_to_nominatim(
        db_engine: sa.Engine, stub: GeocoderStub) -> None:
    stub.add("9 ASH CT", "Raleigh", "NC", "27601", 35.9, -78.9)
    with db_engine.begin() as conn:
        add_parcel(conn, "1", "1 OAK ST", 35.1, -78.1)
        local_hit = add_household(conn, "1 OAK ST")
        remote_hit = add_household(conn, "9 ASH CT")
    settings = settings_for(stub)
    result = run(db_engine, settings,
                 create(db_engine, settings, {"provider": "local,nominatim"}))
    assert result.counts["matched"] == 2
    assert [r.query["street"] for r in stub.recorded("/search")] == ["9 ASH CT"]
    assert household(db_engine, local_hit).geocode_provider == "local"
    assert household(db_engine, remote_hit).geocode_provider == "nominatim"


def test_a_miss_never_erases_a_match(db_engine: sa.Engine, stub: GeocoderStub) -> None:
    with db_engine.begin() as conn:
        good = add_household(conn, "4 NOWHERE WAY", status="matched", lat=35.4, lon=-78.4)
    settings = settings_for(stub)
    result = run(db_engine, settings,
                 create(db_engine, settings, {"provider": "census", "only_missing": False}))
    assert result.counts["no_match"] == 1
    kept = household(db_engine, good)
    assert (kept.geocode_status, kept.latitude, kept.longitude, kept.geocode_provider) == (
        "matched", 35.4, -78.4, "census")


def test_error_results_become_item_errors(db_engine: sa.Engine, stub: GeocoderStub) -> None:
    # A reply that answers only row 0: the others were dropped by the service.
    stub.script("/geocoder", Reply(200, body=b'"0","x","No_Match"\n'))
    with db_engine.begin() as conn:
        ids = [add_household(conn, f"{n} NOWHERE ST") for n in (1, 2)]
    settings = settings_for(stub)
    result = run(db_engine, settings, create(db_engine, settings, {"provider": "census"}))
    assert result.counts["errors"] == 1 and result.counts["no_match"] == 1
    [error] = result.errors
    assert error.item_ref == f"household {ids[1]}" and error.code == "geocode_error"
    assert "2 NOWHERE ST" in error.message and "Raleigh" in error.message
    assert household(db_engine, ids[1]).geocode_status == "error"


def test_outage_keeps_finished_work_then_fails_clearly(
        db_engine: sa.Engine, stub: GeocoderStub, monkeypatch: pytest.MonkeyPatch) -> None:
    # One request in flight, so "the first 6 requests" are the first 6 households.
    with db_engine.begin() as conn:
        ids = [add_household(conn, f"{n} NOWHERE ST") for n in range(10)]
    stub.set_outage("/search", Reply(503), after=6)  # batch 1 (4) + half of batch 2
    settings = settings_for(stub).model_copy(update={"nominatim_concurrency": 1})
    result = run(db_engine, settings, create(db_engine, settings, {"provider": "nominatim"}))

    assert result.failure is not None
    assert "nominatim" in result.failure and "unavailable" in result.failure
    assert "first 6 households" in result.failure and "retry" in result.failure
    assert [b.checkpoint for b in result.batches] == [{"seq": 4}, {"seq": 6}]
    statuses = [household(db_engine, hid).geocode_status for hid in ids]
    assert statuses == ["no_match"] * 6 + [None] * 4  # never "no_match" for the outage


def test_outage_with_nothing_finished_fails_at_once(
        db_engine: sa.Engine, stub: GeocoderStub) -> None:
    with db_engine.begin() as conn:
        add_household(conn, "1 NOWHERE ST")
    stub.set_outage("/geocoder")
    settings = settings_for(stub)
    result = run(db_engine, settings, create(db_engine, settings, {"provider": "census"}))
    assert result.batches == [] and result.failure is not None and "503" in result.failure


def test_resume_reuses_earlier_answers_of_the_job(
        db_engine: sa.Engine, stub: GeocoderStub) -> None:
    stub.add("3 ELM ST", "Raleigh", "NC", "27601", 35.3, -78.3)
    with db_engine.begin() as conn:
        for unit in range(1, 9):
            add_household(conn, "3 ELM ST", unit=str(unit))
    settings = settings_for(stub, geocode_batch_size=3)
    job_id = create(db_engine, settings, {"provider": "nominatim"})
    first = run(db_engine, settings, job_id, max_batches=1)
    assert first.checkpoint == {"seq": 3} and len(stub.recorded("/search")) == 1
    # A new worker: fresh RunContext (empty cache), resuming from the checkpoint.
    resumed = run(db_engine, settings, job_id, resume=first)
    assert resumed.failure is None and resumed.batches[-1].done
    assert len(stub.recorded("/search")) == 1  # seeded from the households table
    assert resumed.counts["matched"] == 8


def test_filters_are_case_insensitive_and_only_missing_is_default(db_engine: sa.Engine) -> None:
    with db_engine.begin() as conn:
        wanted = add_household(conn, "1 A ST", city="Raleigh", county="Wake")
        add_household(conn, "2 A ST", city="Durham", zip_code="27701")
        add_household(conn, "3 A ST", city="RALEIGH", status="matched", lat=1.0, lon=1.0)
        add_household(conn, "4 A ST", city="raleigh", precinct="P-02")
    settings = settings_for()
    job_id = create(db_engine, settings,
                    {"city": "rALEIGH", "state": "nc", "county": "WAKE", "precinct": "p-01"})
    with db_engine.connect() as conn:
        chosen = conn.execute(sa.select(geocode_selections.c.seq, geocode_selections.c.household_id)
                              .where(geocode_selections.c.job_id == job_id)).all()
    assert [tuple(r) for r in chosen] == [(0, wanted)]
    everything = create(db_engine, settings, {"city": "raleigh", "only_missing": False})
    assert run(db_engine, settings, everything).total == 3


def test_empty_selection_is_a_422_that_says_so(db_engine: sa.Engine) -> None:
    error = rejected(db_engine, settings_for(), {"zip_code": "00000"})
    assert (error.status, error.code) == (422, "empty_selection")
    assert "No households match" in error.message and "zip_code='00000'" in error.message
    with db_engine.connect() as conn:  # the creation rolled back: no job, no selection
        assert conn.scalar(sa.select(sa.func.count()).select_from(jobs)) == 0


def test_too_many_items_is_rejected_with_counts_unless_limited(db_engine: sa.Engine) -> None:
    with db_engine.begin() as conn:
        ids = [add_household(conn, f"{n} B ST") for n in range(5)]
    settings = settings_for(max_items_per_job=2, max_items_per_group=3)  # above the group limit
    error = rejected(db_engine, settings, {})
    assert (error.status, error.code) == (422, "too_many_items")
    assert error.details == {"matched": 5, "max_items_per_group": 3, "max_items_per_job": 2}
    assert "COCOA_MAX_ITEMS_PER_GROUP" in error.message
    assert "5 households" in error.message and "limit" in error.message
    job_id = create(db_engine, settings, {"limit": 2})
    with db_engine.connect() as conn:
        chosen = conn.execute(sa.select(geocode_selections.c.household_id)
                              .where(geocode_selections.c.job_id == job_id)
                              .order_by(geocode_selections.c.seq)).scalars().all()
    assert chosen == ids[:2]


@pytest.mark.parametrize(("params", "code"), [
    ({"provider": "google"}, "unknown_provider"),
    ({"provider": "local,bing"}, "unknown_provider"),
    ({"limit": 0}, "invalid_limit"),
    ({"limit": True}, "invalid_limit"),
    ({"only_missing": "yes"}, "invalid_only_missing"),
    ({"city": 5}, "invalid_city"),
    ({"town": "Cary"}, "unknown_parameter"),
])
def test_invalid_params_are_422(db_engine: sa.Engine, params: dict[str, Any], code: str) -> None:
    error = rejected(db_engine, settings_for(), params)
    assert (error.status, error.code) == (422, code)
    if code == "unknown_provider":
        assert error.details == {"valid": ["local", "census", "nominatim"]}
        assert "local, census, nominatim" in error.message


def test_public_nominatim_without_user_agent_is_refused_at_creation(db_engine: sa.Engine) -> None:
    with db_engine.begin() as conn:
        add_household(conn, "1 C ST")
    settings = settings_for(nominatim_user_agent=None,
                            nominatim_base_url="https://nominatim.openstreetmap.org")
    error = rejected(db_engine, settings, {"provider": "nominatim"})
    assert error.status == 422 and "User-Agent" in error.message


def test_stored_params_validate_again_unchanged() -> None:
    once = parse_params({"city": " Raleigh ", "provider": "LOCAL, census", "limit": 5}, 100)
    assert once == {"city": "Raleigh", "state": None, "zip_code": None, "county": None,
                    "precinct": None, "only_missing": True, "limit": 5,
                    "provider": "local,census"}
    assert parse_params(once, 100) == once


def test_offline_jobs_use_big_batches_remote_ones_small(
        db_engine: sa.Engine, stub: GeocoderStub) -> None:
    with db_engine.begin() as conn:
        for n in range(6):
            add_household(conn, f"{n} D ST")
    settings = settings_for(stub)  # geocode_batch_size=4
    local = run(db_engine, settings, create(db_engine, settings, {}))
    assert [b.checkpoint for b in local.batches] == [{"seq": 6}]
    remote = run(db_engine, settings, create(db_engine, settings, {"provider": "local,census"}))
    assert [b.checkpoint for b in remote.batches] == [{"seq": 4}, {"seq": 6}]


def first_batch_of_ten_with_progress_every_four(
    db_engine: sa.Engine, stub: GeocoderStub, provider: str,
) -> tuple[list[int], Batch]:
    """Ten households, one batch through ``provider``: the in-batch progress
    the engine heard, and the batch."""
    with db_engine.begin() as conn:
        for n in range(10):
            add_household(conn, f"{n + 1} NOWHERE ST")
    settings = settings_for(stub, geocode_batch_size=10, geocode_progress_every=4)
    ctx = context(db_engine, settings, create(db_engine, settings, {"provider": provider}))
    reported: list[int] = []
    ctx.report_progress = reported.append
    JOB.plan(ctx)
    return reported, JOB.run_batch(ctx, None)


def test_slow_single_address_batches_report_progress_midway(db_engine: sa.Engine, stub: GeocoderStub) -> None:
    """Batches of 10 with progress every 4: the engine hears 4 and 8 before
    each full batch commits (public Nominatim takes ~1 s per household)."""
    reported, batch = first_batch_of_ten_with_progress_every_four(db_engine, stub, "nominatim")
    assert reported == [4, 8]
    assert batch.processed == 10 and batch.done


def test_batch_providers_report_no_midway_progress(db_engine: sa.Engine, stub: GeocoderStub) -> None:
    reported, batch = first_batch_of_ten_with_progress_every_four(db_engine, stub, "census")
    assert reported == [] and batch.processed == 10
