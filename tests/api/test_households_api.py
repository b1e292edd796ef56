"""Households, voters, map GeoJSON and job results over real HTTP, on SQLite and PostgreSQL.

One server per backend holds the demo town (voters imported, parcels
imported, households geocoded offline, through the real engine); every
expectation is computed from the database itself, not from constants.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from api_helpers import assert_error, root

from cocoa.db.tables import geocode_selections, households, jobs, parcels, voters

EVERYWHERE = "-180,-90,180,90"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir = tmp_path_factory.mktemp("demo_server")
    with root.module_database(request.param, data_dir) as url, root.demo_server(url, data_dir) as server:
        yield server


def scalar(demo: Any, query: Any) -> Any:
    with demo.engine.connect() as conn:
        return conn.scalar(query)


def job_of(demo: Any, type_name: str) -> str:
    return str(scalar(demo, sa.select(jobs.c.id).where(jobs.c.type == type_name, jobs.c.created_by == "demo")))


def count(demo: Any, *conds: Any) -> int:
    return int(scalar(demo, sa.select(sa.func.count()).select_from(households).where(*conds)))


def test_list_pages_and_totals(demo: Any) -> None:
    with demo.client(demo.viewer_token) as client:
        first = client.get("/api/v1/households", params={"limit": 10}).json()
        second = client.get("/api/v1/households", params={"limit": 10, "offset": 10}).json()
    assert first["total"] == count(demo) > 20
    assert len(first["households"]) == 10
    assert {h["id"] for h in first["households"]}.isdisjoint({h["id"] for h in second["households"]})


@pytest.mark.parametrize(("name", "value", "cond"), [
    ("geocoded", "false", households.c.geocode_status.is_distinct_from("matched")),
    ("geocoded", "true", households.c.geocode_status == "matched"),
    ("linked", "true", households.c.parcel_id.isnot(None)),
    ("linked", "false", households.c.parcel_id.is_(None)),
])
def test_filters(demo: Any, name: str, value: str, cond: Any) -> None:
    with demo.client(demo.viewer_token) as client:
        body = client.get("/api/v1/households", params={name: value, "limit": 200}).json()
    assert body["total"] == count(demo, cond) > 0


def test_job_filter_is_the_jobs_households(demo: Any) -> None:
    geocode = job_of(demo, "geocode_households")
    selected = scalar(demo, sa.select(sa.func.count()).select_from(geocode_selections)
                      .where(geocode_selections.c.job_id == geocode))
    with demo.client(demo.viewer_token) as client:
        assert client.get("/api/v1/households", params={"job_id": geocode}).json()["total"] == selected
        assert_error(client.get("/api/v1/households", params={"job_id": "no-such-job"}), 422, "unknown_job")


def test_search_finds_a_misspelt_address(demo: Any) -> None:
    with demo.engine.connect() as conn:
        row = conn.execute(sa.select(households.c.id, households.c.street_line)
                           .where(households.c.street_line.like("1% MAIN ST")).limit(1)).one()
    number = row.street_line.split()[0]
    with demo.client(demo.viewer_token) as client:
        body = client.get("/api/v1/households", params={"q": f"{number} Mian Stret"}).json()
    assert body["households"][0]["id"] == row.id


def test_search_by_voter_id_and_name(demo: Any) -> None:
    with demo.engine.connect() as conn:
        voter = conn.execute(sa.select(voters.c.external_id, voters.c.last_name, voters.c.household_id)
                             .where(voters.c.household_id.isnot(None)).limit(1)).one()
    with demo.client(demo.viewer_token) as client:
        by_id = client.get("/api/v1/households", params={"q": voter.external_id}).json()
        by_name = client.get("/api/v1/households", params={"q": voter.last_name.lower(), "limit": 200}).json()
    assert by_id["households"][0]["id"] == voter.household_id
    assert voter.household_id in {h["id"] for h in by_name["households"]}


def test_household_detail_has_voters_parcel_and_jobs(demo: Any) -> None:
    with demo.engine.connect() as conn:
        hid = conn.scalar(sa.select(households.c.id).where(households.c.parcel_id.isnot(None),
                                                            households.c.geocode_status == "matched").limit(1))
        voter_ids = set(conn.scalars(sa.select(voters.c.id).where(voters.c.household_id == hid)))
    with demo.client(demo.viewer_token) as client:
        body = client.get(f"/api/v1/households/{hid}").json()
        voter = client.get(f"/api/v1/voters/{min(voter_ids)}").json()
        assert_error(client.get("/api/v1/households/2147483647"), 404, "household_not_found")
    assert {v["id"] for v in body["voters"]} == voter_ids
    assert body["address_key"] and body["parcel"]["apn"]
    assert {j["type"] for j in body["jobs"]} == {"import_voters", "parcel_import", "geocode_households"}
    assert isinstance(voter["record"], dict) and voter["record"]  # the full source row


def test_map_points_clusters_and_parcels(demo: Any) -> None:
    placed = count(demo, households.c.latitude.isnot(None), households.c.geocode_status == "matched")
    n_parcels = scalar(demo, sa.select(sa.func.count()).select_from(parcels))
    with demo.client(demo.viewer_token) as client:
        points = client.get("/api/v1/households.geojson", params={"bbox": EVERYWHERE}).json()
        grouped = client.get("/api/v1/households.geojson", params={"bbox": EVERYWHERE, "limit": 10}).json()
        polygons = client.get("/api/v1/parcels.geojson", params={"bbox": EVERYWHERE}).json()
        few = client.get("/api/v1/parcels.geojson", params={"bbox": EVERYWHERE, "limit": 5}).json()
        nowhere = client.get("/api/v1/households.geojson", params={"bbox": "0,0,1,1"}).json()
    assert (points["clustered"], len(points["features"]), points["total"]) == (False, placed, placed)
    assert grouped["clustered"] and sum(f["properties"]["count"] for f in grouped["features"]) == placed
    assert len(polygons["features"]) == n_parcels
    assert {f["geometry"]["type"] for f in polygons["features"]} <= {"Polygon", "MultiPolygon"}
    assert few["truncated"] and few["features"] == [] and few["total"] == n_parcels
    assert nowhere["features"] == []


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "10,0,5,1", "0,-91,1,1", "nan,0,1,1"])
def test_bad_bbox_is_a_clear_422(demo: Any, bbox: str) -> None:
    with demo.client(demo.viewer_token) as client:
        error = assert_error(client.get("/api/v1/households.geojson", params={"bbox": bbox}), 422, "invalid_bbox")
    assert "west,south,east,north" in error["message"] or "bbox" in error["message"]


def test_geocoding_results_list_and_csv(demo: Any) -> None:
    geocode = job_of(demo, "geocode_households")
    unmatched = count(demo, households.c.geocode_status.is_distinct_from("matched"),
                      households.c.id.in_(sa.select(geocode_selections.c.household_id)
                                          .where(geocode_selections.c.job_id == geocode)))
    with demo.client(demo.viewer_token) as client:
        page = client.get(f"/api/v1/jobs/{geocode}/results", params={"limit": 500}).json()
        exported = client.get(f"/api/v1/jobs/{geocode}/results.csv")
    assert page["total"] == unmatched == len(page["items"]) > 0
    assert all(item["reason"] for item in page["items"])
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(r["id"]) for r in rows] == [item["id"] for item in page["items"]]


def test_parcel_results(demo: Any) -> None:
    job = job_of(demo, "parcel_import")
    with demo.client(demo.viewer_token) as client:
        unlinked = client.get(f"/api/v1/jobs/{job}/results").json()
        lonely = client.get(f"/api/v1/jobs/{job}/results", params={"kind": "parcels_without_households"}).json()
        assert_error(client.get(f"/api/v1/jobs/{job}/results", params={"kind": "tie"}), 422, "no_such_results")
    assert unlinked["total"] == count(demo, households.c.parcel_id.is_(None))
    linked_parcels = sa.select(households.c.parcel_id).where(households.c.parcel_id.isnot(None))
    assert lonely["total"] == scalar(demo, sa.select(sa.func.count()).select_from(parcels)
                                     .where(parcels.c.import_job_id == job, parcels.c.id.not_in(linked_parcels)))


def test_geocode_the_unmatched_again_needs_admin(demo: Any) -> None:
    geocode = job_of(demo, "geocode_households")
    body = {"unmatched_in_job": geocode, "provider": "local"}
    with demo.client(demo.viewer_token) as client:
        assert_error(client.post("/api/v1/jobs/geocoding", json=body), 403, "forbidden")
    with demo.client() as client:
        response = client.post("/api/v1/jobs/geocoding", json=body)
        assert response.status_code == 202, response.text
        unmatched = client.get(f"/api/v1/jobs/{geocode}/results").json()["total"]
        new = client.get(response.headers["location"]).json()
    assert new["params"]["unmatched_in_job"] == geocode
    selected = scalar(demo, sa.select(sa.func.count()).select_from(geocode_selections)
                      .where(geocode_selections.c.job_id == new["id"]))
    assert selected == unmatched > 0  # exactly what the first job left unmatched
    with demo.client() as client:
        nothing = client.post("/api/v1/jobs/geocoding", json={"unmatched_in_job": "no-such-job"})
    assert_error(nothing, 422, "empty_selection")  # readable, nothing to do


def test_anonymous_is_refused(demo: Any) -> None:
    import httpx

    for path in ("/api/v1/households", "/api/v1/households/1", "/api/v1/voters", "/api/v1/voters/1",
                 f"/api/v1/households.geojson?bbox={EVERYWHERE}", f"/api/v1/parcels.geojson?bbox={EVERYWHERE}"):
        assert_error(httpx.get(demo.url + path), 401)


def test_cached_clusters_follow_every_change(demo: Any) -> None:
    """The clustered view is cached per data version: a write shows at once."""
    params = {"bbox": EVERYWHERE, "limit": 10}
    with demo.engine.connect() as conn:
        hid, lat, lon = conn.execute(sa.select(households.c.id, households.c.latitude, households.c.longitude)
                                     .where(households.c.latitude.isnot(None)).limit(1)).one()
    with demo.client(demo.viewer_token) as client:
        before = client.get("/api/v1/households.geojson", params=params).json()
        assert client.get("/api/v1/households.geojson", params=params).json() == before
        try:
            with demo.engine.begin() as conn:  # what a geocoding job's write does
                conn.execute(sa.update(households).where(households.c.id == hid).values(
                    latitude=0.5, longitude=0.5, updated_at=sa.func.current_timestamp()))
            after = client.get("/api/v1/households.geojson", params=params).json()
        finally:
            with demo.engine.begin() as conn:
                conn.execute(sa.update(households).where(households.c.id == hid).values(
                    latitude=lat, longitude=lon, updated_at=sa.func.current_timestamp()))
    assert after["total"] == before["total"]
    assert any(abs(f["geometry"]["coordinates"][1] - 0.5) < 1 for f in after["features"])
    assert not any(abs(f["geometry"]["coordinates"][1] - 0.5) < 1 for f in before["features"])


def test_search_without_a_house_number_ranks_the_street(demo: Any) -> None:
    """No number typed: the misspelt street name alone finds that street's houses first."""
    with demo.client(demo.viewer_token) as client:
        body = client.get("/api/v1/households", params={"q": "Oka Stret", "limit": 5}).json()
    assert body["total"] > 0
    assert all(" OAK ST" in h["street_line"] for h in body["households"]), body["households"]
