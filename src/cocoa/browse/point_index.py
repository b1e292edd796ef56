"""Every household's position in memory, kept current by deltas, for clustering.

Why: clustering a county view in SQL is a scan of ~100,000 index entries and
a ``GROUP BY`` on every request whose answer is not cached, and during a
geocoding job every request is uncached, since each batch changes the data.
Holding the households' positions (and the few columns the map filters on)
as arrays turns that into a few vectorised passes. The arrays are brought up
to date on each request by reading only the rows written since the last look
(``updated_at`` is indexed and every write to ``households`` sets it; new
rows also take a higher id), so the answer is exact for the version it
reports, like the SQL it replaces.

Two things the delta cannot see, and how they are bounded:

* a write stamped before the last read began but committed after it (a
  transaction that commits a while after it stamped its rows, or a worker
  host whose clock is behind): each delta re-reads :data:`SKEW_SECONDS`
  before the previous read began, and every :data:`MAX_AGE_SECONDS` the
  whole table is read again in the background, which bounds how stale a
  longer delay can leave the map;
* deleted households: nothing in the product deletes them (a reload also
  follows any fall in ``max(id)``, as after a database is recreated).

Answers filtered by job are not served from here (their membership lives in
other tables); :mod:`cocoa.browse.geojson` runs those in SQL.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from cocoa.browse.filters import HouseholdFilter
from cocoa.browse.versions import households_version
from cocoa.db.tables import households

if TYPE_CHECKING:
    from cocoa.browse.geojson import BBox

log = logging.getLogger(__name__)

SKEW_SECONDS = 5.0
MAX_AGE_SECONDS = 300.0
MAX_ANSWERS = 64
RELOAD_SHARE = 0.2  # a delta larger than this share of the rows: read everything instead

_COLUMNS = (households.c.id, households.c.longitude, households.c.latitude, households.c.city,
            households.c.zip_code, households.c.precinct, households.c.geocode_status, households.c.parcel_id)


@dataclass(slots=True)
class _Arrays:
    """Column arrays sorted by household id (so the first of a group is its lowest id)."""

    ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    city: np.ndarray
    zip_code: np.ndarray
    precinct: np.ndarray
    status: np.ndarray
    linked: np.ndarray

    @classmethod
    def of(cls, rows: list[Any]) -> _Arrays:
        rows = sorted(rows, key=lambda r: r[0])
        return cls(
            ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
            lon=np.fromiter((np.nan if r[1] is None else r[1] for r in rows), dtype=np.float64, count=len(rows)),
            lat=np.fromiter((np.nan if r[2] is None else r[2] for r in rows), dtype=np.float64, count=len(rows)),
            city=_upper(r[3] for r in rows), zip_code=_upper(r[4] for r in rows), precinct=_upper(r[5] for r in rows),
            status=np.array([r[6] for r in rows], dtype=object),
            linked=np.fromiter((r[7] is not None for r in rows), dtype=bool, count=len(rows)))

    def merged(self, delta: _Arrays) -> _Arrays:
        """These arrays with ``delta``'s rows replacing or joining theirs."""
        at = np.searchsorted(self.ids, delta.ids)
        known = (at < len(self.ids)) & (self.ids[np.minimum(at, len(self.ids) - 1)] == delta.ids) \
            if len(self.ids) else np.zeros(len(delta.ids), dtype=bool)
        fields = ("lon", "lat", "city", "zip_code", "precinct", "status", "linked")
        updated = {name: getattr(self, name).copy() for name in fields}
        for name in fields:
            updated[name][at[known]] = getattr(delta, name)[known]
        new = ~known
        if not new.any():
            return _Arrays(ids=self.ids, **updated)
        ids = np.concatenate([self.ids, delta.ids[new]])
        order = np.argsort(ids, kind="stable")
        return _Arrays(ids=ids[order],
                       **{name: np.concatenate([updated[name], getattr(delta, name)[new]])[order] for name in fields})


def _upper(values: Any) -> np.ndarray:
    return np.array([v.upper() if v else None for v in values], dtype=object)


@dataclass(slots=True)
class _Snapshot:
    arrays: _Arrays
    version: tuple[int, datetime | None]
    read_at: datetime  # when the newest read of it began (this process's clock, UTC)
    loaded_at: float  # monotonic time of the last whole read


class PointIndex:
    """The households of one database (one engine) as arrays."""

    def __init__(self) -> None:
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()
        self._reloading = False
        # Answers for the current arrays; emptied whenever they change.
        self._answers: dict[tuple[Any, ...], tuple[int, list[dict[str, Any]] | None]] = {}

    def view(self, conn: sa.Connection, box: BBox, flt: HouseholdFilter, cell: float, limit: int
             ) -> tuple[int, list[dict[str, Any]] | None]:
        """(households in view, one feature per grid cell), what the SQL count
        and ``GROUP BY`` would answer; no features when the view holds at most
        ``limit`` households (the caller reads those points from the table)."""
        with self._lock:
            arrays = self._current(conn)
            key = (box, flt, cell, limit)
            if (found := self._answers.get(key)) is not None:
                return found  # the same view of the same arrays: everybody's first view of the county
            chosen = np.flatnonzero(_mask(arrays, box, flt))
            answer = len(chosen), (_grid(arrays, chosen, cell) if len(chosen) > limit else None)
            if len(self._answers) >= MAX_ANSWERS:
                self._answers.clear()
            self._answers[key] = answer
            return answer

    def _current(self, conn: sa.Connection) -> _Arrays:
        version = households_version(conn)
        snap = self._snapshot
        if snap is None or version[0] < snap.version[0] or snap.version[1] is None or version[1] is None:
            snap = _read_all(conn)
        elif version != snap.version:
            snap = _read_delta(conn, snap, version)
        if snap is not self._snapshot:
            self._answers.clear()
        self._snapshot = snap
        if time.monotonic() - snap.loaded_at > MAX_AGE_SECONDS and not self._reloading:
            self._reloading = True
            threading.Thread(target=self._reload, args=(conn.engine,), daemon=True,
                             name="cocoa-map-reload").start()
        return snap.arrays

    def _reload(self, engine: sa.Engine) -> None:
        """A whole read off the request path; requests meanwhile use the
        current arrays and their deltas. Rows written while it reads are
        stamped after its ``read_at`` minus the skew, so the next delta reads them."""
        try:
            with engine.connect() as conn:
                fresh = _read_all(conn)
            with self._lock:
                self._snapshot = fresh
                self._answers.clear()
        except Exception:  # noqa: BLE001 - a failed refresh leaves the current arrays; the next request retries
            log.warning("map point index: reload failed", exc_info=True)
        finally:
            self._reloading = False


def _read_all(conn: sa.Connection) -> _Snapshot:
    started = datetime.now(UTC)
    version = households_version(conn)
    rows = list(conn.execute(sa.select(*_COLUMNS)))
    return _Snapshot(_Arrays.of(rows), version, started, time.monotonic())


def _read_delta(conn: sa.Connection, snap: _Snapshot, version: tuple[int, datetime | None]) -> _Snapshot:
    """The rows stamped since the last read began (less the skew) or newer than its last id."""
    started = datetime.now(UTC)
    since = snap.read_at - timedelta(seconds=SKEW_SECONDS)
    rows = list(conn.execute(sa.select(*_COLUMNS).where(
        sa.or_(households.c.updated_at >= since, households.c.id > snap.version[0]))))
    if len(rows) > RELOAD_SHARE * max(len(snap.arrays.ids), 1):
        return _read_all(conn)  # most of the table changed: one plain read is cheaper than merging
    return _Snapshot(snap.arrays.merged(_Arrays.of(rows)), version, started, snap.loaded_at)


def _mask(a: _Arrays, box: BBox, flt: HouseholdFilter) -> np.ndarray:
    """The rows the SQL conditions of the view and ``flt`` select (NULL never matches)."""
    with np.errstate(invalid="ignore"):
        mask = (a.lat >= box.south) & (a.lat <= box.north) & (a.lon >= box.west) & (a.lon <= box.east)
    for name in ("city", "zip_code", "precinct"):
        value = getattr(flt, name)
        if value:
            mask &= getattr(a, name) == value.strip().upper()
    if flt.geocoded is not None:
        matched = a.status == "matched"
        # SQL's NOT (lat IS NOT NULL AND status = 'matched') is NULL, so false, for a NULL status.
        mask &= matched if flt.geocoded else (~matched & (a.status != None))  # noqa: E711 - elementwise
    if flt.linked is not None:
        mask &= a.linked if flt.linked else ~a.linked
    return mask


def _grid(a: _Arrays, chosen: np.ndarray, cell: float) -> list[dict[str, Any]]:
    if not len(chosen):
        return []
    lon, lat = a.lon[chosen], a.lat[chosen]
    gx = np.floor((lon + 360.0) / cell).astype(np.int64)
    gy = np.floor((lat + 180.0) / cell).astype(np.int64)
    _cells, first, inverse, counts = np.unique(gx * (1 << 32) + gy, return_index=True, return_inverse=True,
                                               return_counts=True)
    mean_lon = np.bincount(inverse, weights=lon) / counts
    mean_lat = np.bincount(inverse, weights=lat) / counts
    first_ids = a.ids[chosen][first]
    return [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
             "properties": {"cluster": True, "count": int(n), "id": int(i) if n == 1 else None}}
            for x, y, n, i in zip(mean_lon, mean_lat, counts, first_ids, strict=True)]


_indexes: weakref.WeakKeyDictionary[sa.Engine, PointIndex] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def for_engine(engine: sa.Engine) -> PointIndex:
    """One index per engine: a process can serve several databases (tests do)."""
    with _indexes_lock:
        index = _indexes.get(engine)
        if index is None:
            index = _indexes[engine] = PointIndex()
        return index
