"""Households and parcels as GeoJSON, bounded by the map's view.

Why server-side grid clustering: a county view holds ~100,000 households;
sending them all would make every pan a multi-megabyte download and the
browser would draw each one. So a view with more than ``limit`` households
gets one feature per grid cell instead, counted from the households'
positions held in memory (:mod:`cocoa.browse.point_index`; in SQL, a
``GROUP BY`` on the cell, only for the views filtered by job); zoomed in far
enough, the real points come back. The cell size is a power of two of degrees, so cells stay put while
the user pans. Parcels are polygons: a view with more than ``limit`` of them
returns none and says ``truncated`` (the page asks the user to zoom in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from shapely import wkb
from shapely.geometry import mapping

from cocoa.browse import point_index
from cocoa.browse.filters import HouseholdFilter, job_type, touched_by
from cocoa.db.driver import driver_for
from cocoa.db.tables import households, parcels

GRID_CELLS = 32  # about this many cells across the view's wider side


@dataclass(frozen=True, slots=True)
class BBox:
    west: float
    south: float
    east: float
    north: float

    @classmethod
    def parse(cls, text: str) -> BBox:
        """``west,south,east,north`` in degrees; ValueError says what is wrong."""
        parts = text.split(",")
        if len(parts) != 4:
            raise ValueError("bbox must be four numbers: west,south,east,north (degrees)")
        try:
            west, south, east, north = (float(p) for p in parts)
        except ValueError:
            raise ValueError("bbox must be four numbers: west,south,east,north (degrees)") from None
        if not all(math.isfinite(v) for v in (west, south, east, north)):
            raise ValueError("bbox values must be finite numbers")
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise ValueError("bbox must have -180 <= west <= east <= 180 and -90 <= south <= north <= 90")
        return cls(west, south, east, north)


def _in_view(box: BBox) -> list[sa.ColumnElement[bool]]:
    return [households.c.latitude.between(box.south, box.north),
            households.c.longitude.between(box.west, box.east)]


def household_features(conn: sa.Connection, box: BBox, flt: HouseholdFilter, limit: int) -> dict[str, Any]:
    """Points when the view holds at most ``limit`` households, else grid clusters."""
    if flt.job_id:  # membership lives in other tables: SQL only
        conds = [*_in_view(box), *flt.conditions(conn)]
        total = int(conn.scalar(sa.select(sa.func.count()).select_from(households).where(*conds)) or 0)
        clusters = _clusters(conn, conds, _cell_size(box)) if total > limit else None
    else:
        total, clusters = point_index.for_engine(conn.engine).view(conn, box, flt, _cell_size(box), limit)
    if clusters is None:
        points = _points(conn, [*_in_view(box), *flt.conditions(conn)])
        return {"type": "FeatureCollection", "features": points, "total": total, "clustered": False}
    return {"type": "FeatureCollection", "features": clusters, "total": total, "clustered": True}


def _points(conn: sa.Connection, conds: list[sa.ColumnElement[bool]]) -> list[dict[str, Any]]:
    query = (sa.select(households.c.id, households.c.longitude, households.c.latitude,
                       households.c.street_line, households.c.geocode_provider,
                       households.c.geocode_quality, households.c.parcel_id)
             .where(*conds).order_by(households.c.id))
    return [{"type": "Feature", "id": r.id,
             "geometry": {"type": "Point", "coordinates": [r.longitude, r.latitude]},
             "properties": {"id": r.id, "label": r.street_line, "provider": r.geocode_provider,
                            "quality": r.geocode_quality, "linked": r.parcel_id is not None}}
            for r in conn.execute(query)]


def _cell_size(box: BBox) -> float:
    span = max(box.east - box.west, box.north - box.south, 1e-6)
    return float(2.0 ** math.ceil(math.log2(span / GRID_CELLS)))


def _clusters(conn: sa.Connection, conds: list[sa.ColumnElement[bool]], cell: float) -> list[dict[str, Any]]:
    gx = _floor((households.c.longitude + 360.0) / cell, conn)
    gy = _floor((households.c.latitude + 180.0) / cell, conn)
    gx, gy = gx.label("gx"), gy.label("gy")
    query = (sa.select(gx, gy, sa.func.count().label("n"), sa.func.avg(households.c.longitude).label("lon"),
                       sa.func.avg(households.c.latitude).label("lat"), sa.func.min(households.c.id).label("first"))
             .where(*conds).group_by(gx, gy))
    return [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(r.lon), float(r.lat)]},
             "properties": {"cluster": True, "count": int(r.n), "id": int(r.first) if r.n == 1 else None}}
            for r in conn.execute(query)]


def _floor(value: sa.ColumnElement[Any], conn: sa.Connection) -> sa.ColumnElement[int]:
    """floor() of a positive value (the callers shift longitudes and
    latitudes to be positive), as the backend can compute it."""
    return driver_for(conn).floor_int(value)


def parcel_features(conn: sa.Connection, box: BBox, limit: int, linked: bool | None = None,
                    job_id: str | None = None) -> dict[str, Any]:
    """Parcels overlapping the view, with whether a household is linked to each."""
    has_household = sa.exists(sa.select(households.c.id).where(households.c.parcel_id == parcels.c.id))
    # A parcel overlapping the view starts at most the tallest parcel's height
    # below it: that bound turns the index on min_lat into a narrow band
    # instead of everything south of the view's north edge.
    conds: list[sa.ColumnElement[bool]] = [
        parcels.c.min_lat.between(box.south - _tallest_parcel(conn), box.north), parcels.c.max_lat >= box.south,
        parcels.c.max_lon >= box.west, parcels.c.min_lon <= box.east]
    if linked is not None:
        conds.append(has_household if linked else ~has_household)
    if job_id:
        conds.append(_parcel_of_job(conn, job_id))
    total = int(conn.scalar(sa.select(sa.func.count()).select_from(parcels).where(*conds)) or 0)
    if total > limit:
        return {"type": "FeatureCollection", "features": [], "total": total, "truncated": True}
    query = (sa.select(parcels.c.id, parcels.c.apn, parcels.c.situs_address, parcels.c.geometry_wkb,
                       has_household.label("linked")).where(*conds).order_by(parcels.c.id))
    features = [{"type": "Feature", "id": r.id, "geometry": mapping(wkb.loads(bytes(r.geometry_wkb))),
                 "properties": {"id": r.id, "apn": r.apn, "situs": r.situs_address, "linked": bool(r.linked)}}
                for r in conn.execute(query)]
    return {"type": "FeatureCollection", "features": features, "total": total, "truncated": False}


_tallest: dict[tuple[Any, ...], float] = {}


def _tallest_parcel(conn: sa.Connection) -> float:
    """The largest ``max_lat - min_lat`` of any parcel, computed once per
    version of the parcels table (``max(id), max(updated_at)``: two index
    lookups; every parcel write sets ``updated_at``)."""
    # Two statements: SQLite answers a lone max() from the index, not two in one.
    version = (conn.scalar(sa.select(sa.func.max(parcels.c.id))),
               conn.scalar(sa.select(sa.func.max(parcels.c.updated_at))))
    found = _tallest.get(version)
    if found is None:
        found = float(conn.scalar(sa.select(sa.func.max(parcels.c.max_lat - parcels.c.min_lat))) or 0.0)
        _tallest.clear()  # only the current version is worth keeping
        _tallest[version] = found
    return found


def _parcel_of_job(conn: sa.Connection, job_id: str) -> sa.ColumnElement[bool]:
    """A parcel import: its parcels. Other jobs: the parcels of the households they touched."""
    if job_type(conn, job_id) == "parcel_import":
        return parcels.c.import_job_id == job_id
    return parcels.c.id.in_(sa.select(households.c.parcel_id).where(touched_by(conn, job_id)))


def extent(conn: sa.Connection, flt: HouseholdFilter) -> BBox | None:
    """The bounds of the filtered households with coordinates (the map's first view)."""
    row = conn.execute(sa.select(sa.func.min(households.c.longitude), sa.func.min(households.c.latitude),
                                 sa.func.max(households.c.longitude), sa.func.max(households.c.latitude))
                       .where(households.c.latitude.isnot(None), *flt.conditions(conn))).first()
    if row is None or row[0] is None:
        return None
    return BBox(float(row[0]), float(row[1]), float(row[2]), float(row[3]))
