"""``parcel_import`` against SQLite and PostgreSQL (``db_engine`` is parametrised).

The job type is driven by a tiny local loop that mimics the engine's contract
(validate in the creation transaction, plan, then run_batch -> write in one
transaction, checkpoint stored only after the commit) so these tests do not
depend on the worker. Every file is generated in the test by the sample town.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import shapely
import sqlalchemy as sa
from tests.contract import driving
from tests.contract.driving import Run

from cocoa.config import Settings
from cocoa.db.tables import households, parcels
from cocoa.domain.addresses import household_key
from cocoa.jobs.types import CreateContext, JobFailed, JobValidationError, RunContext
from cocoa.jobtypes.parcel_import import ParcelImport
from cocoa.samples import parcels as town_mod
from cocoa.samples.parcels import Town, generate_town

JOB = ParcelImport()


# ------------------------------------------------------------------ the local driver


def create(engine: sa.Engine, data: bytes, params: dict[str, Any] | None = None,
           filename: str | None = None, settings: Settings | None = None) -> Run:
    job_id = str(uuid.uuid4())
    with engine.begin() as conn:
        validated = JOB.validate(CreateContext(
            conn=conn, job_id=job_id, params=dict(params or {}),
            settings=settings or Settings(), upload=io.BytesIO(data), upload_filename=filename))
    json.dumps(validated)  # params must be storable as JSON
    return Run(job_id, validated, data)


def drive(engine: sa.Engine, run: Run, batch_size: int = 50,
          max_batches: int | None = None) -> Run:
    return driving.drive(JOB, engine, run, batch_size=batch_size, max_batches=max_batches)


def insert_households(engine: sa.Engine, town: Town) -> list[int]:
    now = datetime.now(UTC)
    rows = [{"address_key": household_key(h.street, h.city, h.state, h.zip_code, h.unit),
             "street_line": h.street, "unit": h.unit, "city": h.city, "state": h.state,
             "zip_code": h.zip_code, "latitude": h.latitude, "longitude": h.longitude,
             "created_at": now, "updated_at": now} for h in town.households]
    assert len({r["address_key"] for r in rows}) == len(rows), "sample keys must be unique"
    with engine.begin() as conn:
        conn.execute(households.insert(), rows)
        ids = conn.execute(sa.select(households.c.id).order_by(households.c.id)).scalars()
        return list(ids)


def stored_parcels(engine: sa.Engine, source: str | None = None) -> dict[str, dict[str, Any]]:
    query = sa.select(parcels)
    if source:
        query = query.where(parcels.c.source == source)
    with engine.connect() as conn:
        return {r.apn: dict(r._mapping) for r in conn.execute(query)}


def links(engine: sa.Engine) -> list[tuple[Any, ...]]:
    query = (sa.select(households.c.street_line, parcels.c.apn, households.c.parcel_link_method)
             .select_from(households.outerjoin(parcels, households.c.parcel_id == parcels.c.id))
             .order_by(households.c.id))
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def usps_normaliser() -> bool:
    return household_key("1 NORTH OAK STREET", None, "NC", "27500") == \
        household_key("1 N OAK ST", None, "NC", "27500")


# ------------------------------------------------------------------ import, every format


FORMATS = {
    "geojson": town_mod.to_geojson,
    "shapefile": town_mod.to_shapefile_zip,  # EPSG:2264 with .prj
    "gpkg": town_mod.to_gpkg,
    "filegdb": town_mod.to_filegdb_zip,
    "csv": town_mod.to_csv,
    "csv-geojson": lambda t: town_mod.to_csv(t, geometry="geojson"),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_imports_the_town(db_engine: sa.Engine, fmt: str) -> None:
    town = generate_town(240, seed=3, households=False)
    run = drive(db_engine, create(db_engine, FORMATS[fmt](town)), batch_size=64)

    assert run.done and run.params["format"] == fmt.split("-")[0]
    assert run.params["source"] == "nc_onemap"
    final = town.final_parcels()
    stored = stored_parcels(db_engine)
    assert set(stored) == set(final)
    assert run.result["parcels_imported"] == len(final)
    assert run.result["parcels_updated"] == 0

    # geometry: WGS84, same shape as generated (within ~1 cm through State Plane)
    for apn, p in final.items():
        geom = shapely.from_wkb(stored[apn]["geometry_wkb"])
        assert geom.is_valid and geom.geom_type in ("Polygon", "MultiPolygon")
        expected = p.geometry if p.geometry.is_valid else shapely.make_valid(p.geometry)
        assert geom.symmetric_difference(expected).area < 1e-6 * expected.area + 1e-12
        rep = shapely.Point(stored[apn]["rep_lon"], stored[apn]["rep_lat"])
        assert geom.intersects(rep)
        minx, miny, maxx, maxy = geom.bounds
        assert (stored[apn]["min_lon"], stored[apn]["max_lat"]) == pytest.approx((minx, maxy))

    bowties = {p.apn for p in final.values() if p.kind == "bowtie"}
    assert bowties and run.result["parcels_repaired"] == len(bowties)
    assert all(shapely.from_wkb(stored[a]["geometry_wkb"]).geom_type == "MultiPolygon"
               for a in bowties)
    multis = [a for a, p in final.items() if p.kind == "multi"]
    assert multis and all(len(shapely.from_wkb(stored[a]["geometry_wkb"]).geoms) == 2
                          for a in multis)

    # empty geometry: an item error naming the feature; the job went on
    empties = [i for i, p in enumerate(town.parcels) if p.kind == "empty"]
    errors = [e for e in run.errors if e.severity == "error"]
    assert [(e.item_index, e.code) for e in errors] == [(i, "empty_geometry") for i in empties]
    assert errors[0].item_ref == f"feature {empties[0] + 1}"
    assert run.result["item_errors"] == len(empties)

    # duplicate APN: the later feature won, with a warning on it
    dup_apns = {p.apn for p in town.parcels if p.kind == "duplicate"}
    warnings = [e for e in run.errors if e.severity == "warning"]
    assert {e.code for e in warnings} == {"duplicate_apn"} and len(warnings) == len(dup_apns)
    for apn in dup_apns:
        assert stored[apn]["attributes"]["ownname"].endswith("(UPDATED)")
        last = max(i for i, p in enumerate(town.parcels) if p.apn == apn)
        assert any(w.item_index == last for w in warnings)

    # stacked condos are kept as separate parcels sharing one footprint
    condos = [p for p in final.values() if p.kind == "condo"]
    assert len(condos) >= 3
    footprint = {stored[p.apn]["geometry_wkb"] for p in condos[:3]}
    assert len(footprint) == 1

    # situs: placeholders get no key; double spaces do not leak into keys
    for apn, p in final.items():
        row = stored[apn]
        if p.kind == "placeholder":
            assert row["situs_key"] is None and row["situs_address"] == "0 DEFAULT STREET"
        else:
            assert row["situs_key"] == household_key(p.situs, p.city, "NC", p.zip_code)
        assert set(row["attributes"]) == set(town_mod.NC_ONEMAP_FIELDS)


def test_regrid_file_links_by_its_own_field_names(db_engine: sa.Engine) -> None:
    town = generate_town(120, seed=5, schema="regrid")
    insert_households(db_engine, town)
    run = drive(db_engine, create(db_engine, town_mod.to_gpkg(town)))
    assert run.params["source"] == "regrid"
    assert run.params["file"]["mapping"]["apn_field"] == "parcelnumb"
    assert set(stored_parcels(db_engine)) == set(town.final_parcels())
    assert run.result["households_linked_address"] > 0


# ------------------------------------------------------------------ linking


@pytest.mark.parametrize("spelling", ["basic", "usps"])
def test_every_household_linked_to_the_right_parcel(db_engine: sa.Engine, spelling: str) -> None:
    if spelling == "usps" and not usps_normaliser():
        pytest.skip("the address normaliser is still the placeholder (no USPS abbreviations)")
    town = generate_town(400, seed=11, spelling=spelling)
    insert_households(db_engine, town)
    run = drive(db_engine, create(db_engine, town_mod.to_shapefile_zip(town)), batch_size=97)

    expected = [(h.street, h.expected_apn, h.expected_method) for h in town.households]
    assert links(db_engine) == expected
    by_method = {m: sum(1 for h in town.households if h.expected_method == m)
                 for m in ("address", "location")}
    assert by_method["address"] > 0 and by_method["location"] > 0
    assert run.result["households_linked_address"] == by_method["address"]
    assert run.result["households_linked_location"] == by_method["location"]
    assert "linking" in run.phases
    assert run.total == run.processed == len(town.parcels) + len(town.households)


def test_links_to_another_source_are_left_alone(db_engine: sa.Engine) -> None:
    town = generate_town(150, seed=2)
    insert_households(db_engine, town)
    drive(db_engine, create(db_engine, town_mod.to_geojson(town), {"source": "county"}))
    before = links(db_engine)
    run = drive(db_engine, create(db_engine, town_mod.to_geojson(town), {"source": "other"}))
    assert links(db_engine) == before  # already linked to "county" parcels
    linked = sum(1 for h in town.households if h.expected_method)
    assert run.result["households_linked_address"] + \
        run.result["households_linked_location"] == 0
    assert run.total == run.processed == len(town.parcels) + len(town.households) - linked


def test_reimport_updates_in_place(db_engine: sa.Engine) -> None:
    town = generate_town(150, seed=4)
    insert_households(db_engine, town)
    data = town_mod.to_geojson(town)
    first = drive(db_engine, create(db_engine, data))
    ids = {a: r["id"] for a, r in stored_parcels(db_engine).items()}
    links_before = links(db_engine)
    second = drive(db_engine, create(db_engine, data))
    assert {a: r["id"] for a, r in stored_parcels(db_engine).items()} == ids
    assert second.result["parcels_imported"] == 0
    assert second.result["parcels_updated"] == first.result["parcels_imported"] == len(ids)
    assert links(db_engine) == links_before


# ------------------------------------------------------------------ crash and resume


def snapshot(engine: sa.Engine) -> tuple[Any, ...]:
    rows = stored_parcels(engine)
    keep = ("apn", "source", "situs_address", "situs_key", "geometry_wkb", "rep_lon", "rep_lat",
            "attributes", "import_job_id")
    return ({a: {k: r[k] for k in keep} for a, r in rows.items()}, links(engine))


def reset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(households.update().values(parcel_id=None, parcel_link_method=None))
        conn.execute(parcels.delete())


@pytest.mark.parametrize("stop_after", [3, 9])  # inside import; inside linking
def test_crash_resume_equals_clean_run(db_engine: sa.Engine, stop_after: int) -> None:
    town = generate_town(300, seed=8)
    insert_households(db_engine, town)
    data = town_mod.to_shapefile_zip(town)
    clean = drive(db_engine, create(db_engine, data), batch_size=50)
    expected = snapshot(db_engine)
    reset(db_engine)

    crashed = Run(clean.job_id, clean.params, data)  # same job, attempt 2 after a crash
    drive(db_engine, crashed, batch_size=50, max_batches=stop_after)
    assert not crashed.done
    phase = crashed.checkpoint["phase"] if crashed.checkpoint else None
    assert phase == ("import" if stop_after == 3 else "linking")
    # a batch that was computed but never committed: the engine drops it
    JOB.run_batch(RunContext(
        job_id=clean.job_id, params=clean.params, settings=Settings(), engine=db_engine,
        batch_size=50, upload_id=None, result={}, open_upload=lambda: io.BytesIO(data)),
        crashed.checkpoint)
    drive(db_engine, crashed, batch_size=50)  # a new worker, from the stored checkpoint

    assert snapshot(db_engine) == expected
    assert crashed.result == clean.result
    assert crashed.errors == clean.errors
    assert crashed.processed == clean.processed == crashed.total


# ------------------------------------------------------------------ validation


def test_validation_rejects_over_the_group_limit(db_engine: sa.Engine) -> None:
    """Over the per-job limit a file becomes a group (see the split tests); only the
    group limit (COCOA_MAX_ITEMS_PER_GROUP) refuses it."""
    town = generate_town(60, households=False)
    with pytest.raises(JobValidationError) as info:
        create(db_engine, town_mod.to_geojson(town), settings=Settings(max_items_per_group=50))
    assert info.value.status == 422 and info.value.code == "too_many_items"
    assert "60" in info.value.message and "50" in info.value.message
    assert "COCOA_MAX_ITEMS_PER_GROUP" in info.value.message
    assert create(db_engine, town_mod.to_geojson(town), settings=Settings(max_items_per_job=50))
    with db_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(parcels)).scalar() == 0


def test_validation_names_candidate_columns_for_unknown_fields(db_engine: sa.Engine) -> None:
    town = generate_town(20, households=False)
    csv_text = town_mod.to_csv(town).decode().replace("parno", "PIN_NUM", 1)
    csv_text = csv_text.replace("siteadd", "SITE_ADDRESS", 1)
    with pytest.raises(JobValidationError) as info:
        create(db_engine, csv_text.encode())
    assert info.value.status == 422 and info.value.code == "unknown_parcel_fields"
    assert "PIN_NUM" in info.value.message and "SITE_ADDRESS" in info.value.message
    run = drive(db_engine, create(db_engine, csv_text.encode(), {
        "mapping": json.dumps({"apn_field": "pin_num", "address_field": "site_address",
                               "city_field": "scity", "zip_field": "szip"})}))
    assert run.params["source"] == "parcels"
    assert set(stored_parcels(db_engine)) == set(town.final_parcels())


def test_validation_refuses_wrong_format_claim_and_bad_params(db_engine: sa.Engine) -> None:
    data = town_mod.to_geojson(generate_town(10, households=False))
    for params, code in (({"format": "shapefile"}, "format_mismatch"),
                         ({"bogus": 1}, "unknown_params"),
                         ({"source_crs": "EPSG:999999"}, "invalid_source_crs"),
                         ({"mapping": "{not json"}, "invalid_mapping")):
        with pytest.raises(JobValidationError) as info:
            create(db_engine, data, params)
        assert info.value.code == code and info.value.status == 422  # readable but invalid


def test_bad_ids_are_item_errors_and_the_job_goes_on(db_engine: sa.Engine) -> None:
    town = generate_town(30, households=False)
    town.parcels[4].apn = ""
    town.parcels[9].apn = "X" * 200
    run = drive(db_engine, create(db_engine, town_mod.to_geojson(town)), batch_size=8)
    codes = {e.item_index: e.code for e in run.errors if e.severity == "error"}
    assert codes[4] == "missing_apn" and codes[9] == "apn_too_long"
    assert run.done and len(stored_parcels(db_engine)) == len(
        {p.apn for p in town.parcels if p.kind != "empty"} - {"", "X" * 200})


def test_a_file_that_breaks_after_validation_fails_the_job(db_engine: sa.Engine) -> None:
    town = generate_town(40, households=False)
    data = town_mod.to_gpkg(town)
    run = create(db_engine, data)
    run.data = data[:4096]  # the stored blob is damaged after validation
    with pytest.raises(JobFailed, match="feature 1"):
        drive(db_engine, run)
    assert stored_parcels(db_engine) == {}
