"""The coordinate reference system: the file's, the client's, or assumed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from cocoa.domain.errors import InputError, Problem

WGS84 = "EPSG:4326"


def parse_crs(value: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise InputError(
            f"source_crs {value!r} is not a coordinate reference system PROJ knows "
            "(use e.g. 'EPSG:2264' for NC State Plane feet).",
            code="invalid_source_crs", problem=Problem.UNPROCESSABLE) from exc


def crs_string(crs: CRS) -> str:
    """A compact, re-parsable CRS: ``EPSG:nnnn`` when there is one, else WKT."""
    epsg = crs.to_epsg(min_confidence=90)
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def looks_like_lonlat(bounds: Sequence[float]) -> bool:
    minx, miny, maxx, maxy = bounds
    if any(not math.isfinite(v) for v in bounds):
        return True  # no geometry to judge: nothing contradicts lon/lat
    return -180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0


def choose_crs(
    file_crs: str | None, source_crs: str | None, bounds: Sequence[float],
) -> tuple[str, str]:
    """(crs, origin): an explicit ``source_crs`` wins (a wrong .prj is a
    common mistake), then the file's CRS; a file without one is taken as
    lon/lat only when its coordinates fit, otherwise it is refused."""
    if source_crs:
        return crs_string(parse_crs(source_crs)), "param"
    if file_crs:
        return crs_string(parse_crs(file_crs)), "file"
    if looks_like_lonlat(bounds):
        return WGS84, "assumed"
    minx, miny, maxx, maxy = bounds
    raise InputError(
        "The file has no coordinate reference system (no .prj or CRS) and its coordinates "
        f"(x {minx:.0f}..{maxx:.0f}, y {miny:.0f}..{maxy:.0f}) are not longitude/latitude. "
        "Send source_crs, e.g. 'EPSG:2264' for NC State Plane (US feet), or include the .prj.",
        code="missing_crs", problem=Problem.UNPROCESSABLE)


def wgs84_transformer(crs: str) -> Transformer | None:
    """None when the data is already WGS84 lon/lat (no work, no rounding)."""
    source = CRS.from_user_input(crs)
    if source.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return None
    return Transformer.from_crs(source, CRS.from_epsg(4326), always_xy=True)


def as_bounds(values: Any) -> tuple[float, float, float, float]:
    if values is None:
        return (math.nan, math.nan, math.nan, math.nan)
    minx, miny, maxx, maxy = (float(v) for v in values)
    return minx, miny, maxx, maxy
