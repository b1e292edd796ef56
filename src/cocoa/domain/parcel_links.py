"""Which parcel a household is on: one rule, applied by every job that can
complete a link, so that the order of the jobs does not change the result.

A household is linked, in this order of precedence:

1. ``address`` - a parcel's situs key is the household key, unit included
   (a condominium file with one parcel per unit links unit to unit);
2. ``building`` - no parcel carries the unit, and a parcel's situs key is the
   household's *building* key (:func:`building_household_key`: the same
   address without the unit, same ZIP or locality). Parcels are usually one
   per building, with a site address without a unit;
3. ``location`` - the household has coordinates inside a parcel.

Several parcels with the key: the lowest id (the one imported first).
Several containing the point (stacked condos, slivers): the smallest, then
the lowest id, so the answer is deterministic.

A link by key (address or building) is never replaced by a location link:
the key says which door it is, a point only says where the geocoder put it
(a flat's point lands in whichever unit of a stacked condo has the lowest id;
a house's may sit across a lot line).

Three jobs complete links, because households, parcels and coordinates may
arrive in any order:

* ``parcel_import`` decides every household it may link (a full decision);
* ``import_voters`` links the households it creates by key, in the insert
  itself (they have no coordinates yet) - one query per batch;
* ``geocode_households`` links the households it places by location, in the
  same statement that stores the point, unless they are linked by key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa

from cocoa import jsontext
from cocoa.db.driver import POSTGRES, SQLITE, driver_for
from cocoa.db.tables import parcels
from cocoa.domain.addresses import building_household_key

ADDRESS, BUILDING, LOCATION = "address", "building", "location"
METHODS = (ADDRESS, BUILDING, LOCATION)  # strongest first
KEY_METHODS = (ADDRESS, BUILDING)  # never replaced by a location link

# Why a household stayed unlinked; both mean no parcel has its address or
# its building's address.
NOT_GEOCODED, OUTSIDE_PARCELS = "not_geocoded", "outside_parcels"

Link = tuple[int | None, str | None]  # (parcel id, method); (None, None): unlinked


# ---------------------------------------------------------------------- by key


def building_key(key: str) -> str | None:
    """The key a flat falls back to, or None when ``key`` has no unit."""
    building = building_household_key(key)
    return building if building != key else None


def by_key(key: str, parcel_of: Mapping[str, int]) -> Link:
    """Address, else building: ``parcel_of`` maps situs keys to parcel ids."""
    pid = parcel_of.get(key)
    if pid is not None:
        return pid, ADDRESS
    building = building_key(key)
    pid = parcel_of.get(building) if building else None
    return (pid, BUILDING) if pid is not None else (None, None)


# (position in the key list, lowest parcel id) of every key with a parcel.
_PG_KEY_LOOKUP = ("SELECT k.n - 1, p.id FROM json_array_elements_text(%(keys)s::json) "
                  "WITH ORDINALITY AS k(key, n), "
                  "LATERAL (SELECT min(id) AS id FROM parcels WHERE situs_key = k.key) AS p "
                  "WHERE p.id IS NOT NULL")
_SQLITE_KEY_LOOKUP = ("SELECT k.key, min(p.id) FROM json_each(:keys) AS k "
                      "JOIN parcels AS p ON p.situs_key = k.value GROUP BY k.key")
_KEY_LOOKUP = {POSTGRES.name: _PG_KEY_LOOKUP, SQLITE.name: _SQLITE_KEY_LOOKUP}


def links_by_key(conn: sa.Connection, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Household key -> (parcel id, method) for the ``keys`` that have a parcel
    at their address or building, over every source.

    For the voter import's insert path: one probe of ``parcels`` (skipped
    when there are none) and one set-based lookup of the keys and their
    building keys, however many households the batch creates. On PostgreSQL
    each key is one index probe whatever the statistics say (see
    :mod:`cocoa.jobtypes.import_voters.sql` for why that matters while tables fill up).
    """
    wanted = list(keys)
    if not wanted or conn.exec_driver_sql("SELECT 1 FROM parcels LIMIT 1").first() is None:
        return {}
    lookup = list({*wanted, *(b for key in wanted if (b := building_key(key)))})
    sql = _KEY_LOOKUP[driver_for(conn).name]
    rows: Any = conn.exec_driver_sql(sql, {"keys": jsontext.dumps(lookup).decode()}).all()
    parcel_of = {lookup[int(position)]: int(pid) for position, pid in rows}
    found: dict[str, tuple[int, str]] = {}
    for key in wanted:
        pid, method = by_key(key, parcel_of)
        if pid is not None and method is not None:
            found[key] = (pid, method)
    return found


# ---------------------------------------------------------------------- by location


@dataclass(slots=True)
class ParcelIndex:
    """Parcels in memory: situs key -> id, and an STRtree of the polygons."""

    by_key: dict[str, int]
    ids: np.ndarray
    areas: np.ndarray
    tree: shapely.STRtree

    @classmethod
    def build(cls, rows: Iterable[Sequence[Any]]) -> ParcelIndex:
        """From ``(id, situs_key, geometry_wkb)`` rows ordered by id. A blob
        that is not WKB is a parcel no point can fall in (not a failure)."""
        by_key: dict[str, int] = {}
        ids: list[int] = []
        blobs: list[bytes] = []
        for pid, key, blob in rows:
            if key and key not in by_key:  # ordered by id: the lowest id keeps a shared key
                by_key[key] = int(pid)
            ids.append(int(pid))
            blobs.append(bytes(blob))
        geoms = (shapely.from_wkb(np.array(blobs, dtype=object), on_invalid="ignore")
                 if blobs else np.array([], dtype=object))
        areas = shapely.area(geoms) if len(geoms) else np.array([])
        return cls(by_key, np.array(ids, dtype=np.int64), areas, shapely.STRtree(geoms))

    def locate(self, lons: Sequence[float], lats: Sequence[float]) -> np.ndarray:
        """Parcel id containing each point (-1 if none): the smallest parcel,
        then the lowest id."""
        found = np.full(len(lons), -1, dtype=np.int64)
        if len(lons) == 0 or len(self.ids) == 0:
            return found
        points = shapely.points(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        hits = self.tree.query(points, predicate="intersects")
        if hits.shape[1] == 0:
            return found
        point_idx, tree_idx = hits
        order = np.lexsort((self.ids[tree_idx], self.areas[tree_idx], point_idx))
        point_idx, tree_idx = point_idx[order], tree_idx[order]
        first = np.ones(len(point_idx), dtype=bool)
        first[1:] = point_idx[1:] != point_idx[:-1]
        found[point_idx[first]] = self.ids[tree_idx[first]]
        return found


def load_index(conn: sa.Connection, source: str | None = None) -> ParcelIndex:
    """The parcels of ``source`` (every source when None)."""
    query = sa.select(parcels.c.id, parcels.c.situs_key, parcels.c.geometry_wkb)
    if source is not None:
        query = query.where(parcels.c.source == source)
    result: Any = conn.execute(query.order_by(parcels.c.id))
    return ParcelIndex.build(result)


def parcels_version(conn: sa.Connection) -> tuple[Any, ...]:
    """Changes whenever a parcel is added or re-imported: the highest id and
    the latest ``updated_at`` (both indexed, so two index lookups). Parcels
    are never deleted by the application."""
    return tuple(conn.execute(sa.select(sa.func.max(parcels.c.id),
                                        sa.func.max(parcels.c.updated_at))).one())


@dataclass(slots=True)
class LocationLinker:
    """Every source's parcels for a geocoding run, reloaded only when they
    changed: checked inside each batch's transaction, so a batch never links
    against parcels older than those it can see."""

    version: tuple[Any, ...] | None = None
    index: ParcelIndex | None = None

    def current(self, conn: sa.Connection) -> ParcelIndex:
        version = parcels_version(conn)
        if self.index is None or version != self.version:
            self.index = load_index(conn) if version[0] is not None else ParcelIndex.build([])
            self.version = version
        return self.index


# ---------------------------------------------------------------------- the full decision


def decide(
    index: ParcelIndex, households: Sequence[tuple[str, float | None, float | None]],
) -> tuple[list[Link], list[str | None]]:
    """The link of each ``(address_key, latitude, longitude)``, and for the
    unlinked ones why (:data:`NOT_GEOCODED` or :data:`OUTSIDE_PARCELS`)."""
    links: list[Link] = []
    located: list[tuple[int, float, float]] = []  # (position, lon, lat)
    for i, (key, lat, lon) in enumerate(households):
        link = by_key(key, index.by_key)
        links.append(link)
        if link[0] is None and lat is not None and lon is not None:
            located.append((i, lon, lat))
    if located:
        found = index.locate([lon for _, lon, _ in located], [lat for _, _, lat in located])
        for (i, _lon, _lat), pid in zip(located, found.tolist(), strict=True):
            if pid >= 0:
                links[i] = (int(pid), LOCATION)
    reasons = [None if link[0] is not None else
               NOT_GEOCODED if lat is None or lon is None else OUTSIDE_PARCELS
               for link, (_key, lat, lon) in zip(links, households, strict=True)]
    return links, reasons
