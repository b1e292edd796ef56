"""The offline default: addresses we already know the location of.

Two sources, tried for every candidate key of a request, most specific first
(the household key with its unit, then the building's key without it):

1. imported parcels whose normalised situs address (``parcels.situs_key``)
   equals the key - located at the parcel's representative point; stacked
   condo parcels share a point and still count as one match, parcels with the
   same key but different points are a tie;
2. households already geocoded (``matched``) under that key - so apartments
   inherit their building's location and a re-run reuses earlier answers.

No network, no rate limit: one indexed lookup per source, the keys bound as a
single array parameter (see ``Driver.key_in``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import NamedTuple, cast

import sqlalchemy as sa

from cocoa.db.driver import Driver, driver_for
from cocoa.db.engine import reading
from cocoa.db.tables import households, parcels
from cocoa.providers.base import GeocodeRequest, GeocodeResult, ProviderStats

NAME = "local"
QUERY_CHUNK = 5000  # keys per lookup query
_SAME_POINT = 7  # decimal places (~1 cm) under which two points are one


class _Point(NamedTuple):
    """A known location (a tuple: a batch builds one per key, so they must be cheap)."""

    latitude: float
    longitude: float
    address: str | None
    source: str  # "parcel" | "household"


class LocalProvider:
    """Matches request keys against parcels and geocoded households."""

    name = NAME
    matches_on_keys = True  # its questions are exact keys, not the query text
    memoise = False  # one indexed lookup is cheaper than the chain's memo

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.stats = ProviderStats()

    def geocode(self, requests: Sequence[GeocodeRequest]) -> list[GeocodeResult]:
        driver = driver_for(self.engine)
        with reading(self.engine) as conn:
            keys = sorted({k for r in requests for k in r.all_keys})
            by_parcel = _lookup(conn, _parcel_query, keys, driver, "parcel")
            # Households are only consulted where the exact parcel key did not
            # settle it (the usual case is a parcel hit: skip that query).
            rest = sorted({k for r in requests if not _settled(r, by_parcel) for k in r.all_keys})
            by_household = _lookup(conn, _household_query, rest, driver, "household")
        return [_resolve(r, by_parcel, by_household) for r in requests]

    def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""


def _settled(request: GeocodeRequest, by_parcel: dict[str, list[_Point]]) -> bool:
    return len(_distinct(by_parcel.get(request.keys[0], ()) if request.keys else ())) == 1


def _lookup(
    conn: sa.Connection, query: Callable[[list[str], Driver], sa.Executable], keys: list[str],
    driver: Driver, source: str,
) -> dict[str, list[_Point]]:
    found: dict[str, list[_Point]] = defaultdict(list)
    for i in range(0, len(keys), QUERY_CHUNK):
        for key, lat, lon, address in _rows(conn, query(keys[i:i + QUERY_CHUNK], driver)):
            found[key].append(_Point(lat, lon, address, source))
    return found


def _rows(conn: sa.Connection, query: sa.Executable) -> list[tuple[str, float, float, str | None]]:
    """(key, latitude, longitude, address) rows."""
    return cast(list[tuple[str, float, float, str | None]], conn.execute(query).all())


def _parcel_query(keys: list[str], driver: Driver) -> sa.Executable:
    return sa.select(parcels.c.situs_key, parcels.c.rep_lat, parcels.c.rep_lon,
                     parcels.c.situs_address).where(driver.key_in(parcels.c.situs_key, keys))


def _household_query(keys: list[str], driver: Driver) -> sa.Executable:
    return sa.select(
        households.c.address_key, households.c.latitude, households.c.longitude,
        sa.func.coalesce(households.c.geocoded_address, households.c.street_line),
    ).where(
        driver.key_in(households.c.address_key, keys),
        households.c.geocode_status == "matched",
        households.c.latitude.is_not(None),
        households.c.longitude.is_not(None),
    )


def _resolve(
    request: GeocodeRequest, by_parcel: dict[str, list[_Point]],
    by_household: dict[str, list[_Point]],
) -> GeocodeResult:
    tied = False
    candidates = [(k, False) for k in request.keys]
    if request.building_key:
        candidates.append((request.building_key, True))
    for key, building in candidates:
        for source in (by_parcel, by_household):
            points = _distinct(source.get(key, ()))
            if len(points) == 1:
                return _matched(request.id, points[0], building)
            tied = tied or len(points) > 1
    if tied:
        return GeocodeResult.tie(request.id, NAME, "several parcels share this address")
    return GeocodeResult.no_match(request.id, NAME)


def _distinct(points: Sequence[_Point]) -> Sequence[_Point]:
    if len(points) < 2:
        return points
    seen: dict[tuple[float, float], _Point] = {}
    for p in points:
        seen.setdefault((round(p.latitude, _SAME_POINT), round(p.longitude, _SAME_POINT)), p)
    return list(seen.values())


def _matched(request_id: str, point: _Point, building: bool) -> GeocodeResult:
    """Quality says where the point came from and whether the unit mattered:
    ``parcel`` / ``household`` for the exact key, ``..._building`` when only
    the address without the unit matched."""
    quality = f"{point.source}_building" if building else point.source
    return GeocodeResult.matched(request_id, NAME, point.latitude, point.longitude,
                                 quality=quality, matched_address=point.address)
