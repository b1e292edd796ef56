"""The map's in-memory point index answers exactly what the SQL it replaces does.

Random households (some unplaced, mixed cities, statuses and parcel links),
random views and filters, on SQLite and PostgreSQL: the index's count and
grid clusters must equal the SQL ``count`` and ``GROUP BY`` over the same
conditions - first on a fresh index, then after updates and inserts that the
index only learns about through its delta read.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from cocoa.browse import geojson, point_index
from cocoa.browse.filters import HouseholdFilter
from cocoa.db.tables import households, parcels

CITIES = ["BAHAMA", "Durham", None, "ROUGEMONT"]
STATUSES = ["matched", "no_match", "tie", None]


def _household(rng: random.Random, n: int, when: datetime) -> dict[str, Any]:
    placed = rng.random() < 0.85
    return {"address_key": f"{n} MAIN ST|{rng.random()}", "street_line": f"{n} MAIN ST",
            "city": rng.choice(CITIES), "zip_code": rng.choice(["27501", "27503", None]),
            "precinct": rng.choice(["P1", "p2", None]),
            "latitude": 36.0 + rng.random() * 0.2 if placed else None,
            "longitude": -78.9 + rng.random() * 0.2 if placed else None,
            "geocode_status": rng.choice(STATUSES), "parcel_id": 1 if rng.random() < 0.5 else None,
            "voter_count": 1, "created_at": when, "updated_at": when}


def _filters(rng: random.Random) -> HouseholdFilter:
    return HouseholdFilter(city=rng.choice([None, "bahama", "DURHAM "]), zip_code=rng.choice([None, "27501"]),
                           precinct=rng.choice([None, "P2"]), geocoded=rng.choice([None, True, False]),
                           linked=rng.choice([None, True, False]))


def _box(rng: random.Random) -> geojson.BBox:
    west, south = -78.95 + rng.random() * 0.2, 35.95 + rng.random() * 0.2
    size = rng.choice([0.01, 0.05, 0.3])
    return geojson.BBox(west, south, west + size, south + size)


def _by_sql(conn: sa.Connection, box: geojson.BBox, flt: HouseholdFilter) -> tuple[int, set[tuple[Any, ...]]]:
    conds = [*geojson._in_view(box), *flt.conditions(conn)]
    total = int(conn.scalar(sa.select(sa.func.count()).select_from(households).where(*conds)) or 0)
    return total, _shape(geojson._clusters(conn, conds, geojson._cell_size(box)))


def _shape(features: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(f["properties"]["count"], f["properties"]["id"], round(f["geometry"]["coordinates"][0], 7),
             round(f["geometry"]["coordinates"][1], 7)) for f in features}


def _compare(conn: sa.Connection, index: point_index.PointIndex, rng: random.Random, views: int) -> int:
    """Compares ``views`` random views; returns how many held clusters (so the test knows it tested some)."""
    clustered = 0
    for _ in range(views):
        box, flt = _box(rng), _filters(rng)
        total, clusters = index.view(conn, box, flt, geojson._cell_size(box), limit=0)
        expected_total, expected = _by_sql(conn, box, flt)
        assert total == expected_total, (box, flt)
        assert _shape(clusters or []) == expected, (box, flt)
        clustered += bool(expected)
    return clustered


def _now() -> datetime:
    return datetime.now(UTC)


def _add_parcel(conn: sa.Connection) -> None:
    """Parcel 1, which the generated households link to half the time."""
    conn.execute(parcels.insert().values(
        id=1, source="t", apn="1", geometry_wkb=b"\x00", min_lon=0, min_lat=0, max_lon=0, max_lat=0,
        rep_lon=0, rep_lat=0, attributes={}, created_at=_now(), updated_at=_now()))


def test_the_index_equals_sql_before_and_after_changes(db_engine: sa.Engine) -> None:
    rng = random.Random(7)
    with db_engine.begin() as conn:
        _add_parcel(conn)
        conn.execute(households.insert(), [_household(rng, n, _now() - timedelta(minutes=5)) for n in range(1500)])
    index = point_index.PointIndex()
    with db_engine.connect() as conn:
        assert _compare(conn, index, rng, 40) > 10
    with db_engine.begin() as conn:  # what geocoding and imports do: move, re-status, relink, add
        ids = [int(i) for i in conn.scalars(sa.select(households.c.id))]
        for hid in rng.sample(ids, 60):
            moved = _household(rng, hid, _now())
            conn.execute(sa.update(households).where(households.c.id == hid).values(
                {k: moved[k] for k in ("latitude", "longitude", "geocode_status", "parcel_id", "city",
                                       "updated_at")}))
        conn.execute(households.insert(), [_household(rng, 5000 + n, _now()) for n in range(40)])
    with db_engine.connect() as conn:
        assert _compare(conn, index, rng, 40) > 10
        # The delta was read, not the whole table again: the snapshot kept its load time.
        assert index._snapshot is not None and len(index._snapshot.arrays.ids) == 1540


def test_an_empty_table_and_an_empty_view(db_engine: sa.Engine) -> None:
    index = point_index.PointIndex()
    box = geojson.BBox(-79, 35, -78, 37)
    with db_engine.connect() as conn:
        assert index.view(conn, box, HouseholdFilter(), 0.01, limit=0) == (0, None)  # points: read from SQL
    with db_engine.begin() as conn:
        _add_parcel(conn)
        conn.execute(households.insert(), [_household(random.Random(n), n, _now()) for n in range(5)])
    with db_engine.connect() as conn:
        total, clusters = index.view(conn, geojson.BBox(0, 0, 1, 1), HouseholdFilter(), 0.01, limit=0)
        assert (total, clusters) == (0, None)
        total, clusters = index.view(conn, box, HouseholdFilter(), 0.01, limit=0)
        assert total == sum(f["properties"]["count"] for f in clusters or []) > 0


def test_a_late_commit_and_the_periodic_reload(db_engine: sa.Engine) -> None:
    """A row stamped before the index's last read but committed after it is
    still picked up (the skew window); an old snapshot is read again whole in
    the background, and requests meanwhile keep being answered."""
    rng = random.Random(3)
    with db_engine.begin() as conn:
        _add_parcel(conn)
        conn.execute(households.insert(), [_household(rng, n, _now() - timedelta(minutes=5)) for n in range(300)])
    index = point_index.PointIndex()
    box, everyone = geojson.BBox(-79, 35, -78, 37), HouseholdFilter()
    stamped_early = _now()
    with db_engine.connect() as conn:
        before, _ = index.view(conn, box, everyone, 0.01, limit=0)
    with db_engine.begin() as conn:  # an existing row (so not a new id) placed, stamped before that read
        unplaced = conn.scalar(sa.select(sa.func.min(households.c.id)).where(households.c.latitude.is_(None)))
        conn.execute(sa.update(households).where(households.c.id == unplaced).values(
            latitude=36.1, longitude=-78.8, updated_at=stamped_early))
    with db_engine.connect() as conn:
        assert index.view(conn, box, everyone, 0.01, limit=0)[0] == before + 1
    assert index._snapshot is not None
    index._snapshot.loaded_at -= point_index.MAX_AGE_SECONDS + 1
    first_load = index._snapshot.loaded_at
    with db_engine.connect() as conn:
        assert index.view(conn, box, everyone, 0.01, limit=0)[0] == before + 1
    deadline = time.monotonic() + 30
    while index._snapshot.loaded_at == first_load and time.monotonic() < deadline:
        time.sleep(0.02)  # poll with a deadline for the background reload
    assert index._snapshot.loaded_at > first_load
    with db_engine.connect() as conn:
        assert index.view(conn, box, everyone, 0.01, limit=0)[0] == before + 1
