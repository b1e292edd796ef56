"""Reprojection to WGS84 and repair, vectorised over a slice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer


@dataclass(slots=True)
class PreparedGeometries:
    """Per-feature outcome of reprojection and repair.

    ``problems[i]`` is None for a usable feature, else (code, message).
    """

    geometries: np.ndarray  # WGS84 polygonal geometries (None where a problem)
    repaired: np.ndarray  # bool: make_valid was needed
    problems: list[tuple[str, str] | None]


def prepare_geometries(geoms: np.ndarray, transformer: Transformer | None,
                       unparsed: dict[int, str] | None = None) -> PreparedGeometries:
    """Reproject to WGS84, repair invalid polygons, keep only polygonal parts.

    Repair happens after reprojection because validity in WGS84 is what the
    stored geometry must have. Everything is vectorised over the slice.
    ``unparsed`` (position -> message) says which missing geometries were
    text that could not be parsed (see :func:`parse_text_geometries_checked`).
    """
    geoms = np.array(geoms, dtype=object, copy=True)  # callers may cache the input
    problems: list[tuple[str, str] | None] = [None] * len(geoms)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    why = unparsed or {}
    for i in np.flatnonzero(missing):
        problems[i] = ("empty_geometry", why.get(int(i)) or (
            "The feature has no geometry (empty or null); fix or remove it in the source file."))
    geoms[missing] = None  # later steps skip what is already a problem
    if transformer is not None:
        geoms = shapely.transform(geoms, _projector(transformer), include_z=None)
    geoms = _polygonal_only(geoms, problems)
    invalid = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
    repaired = np.zeros(len(geoms), dtype=bool)
    for i in np.flatnonzero(invalid):
        fixed = _repair(geoms[i])
        if fixed is None:
            problems[i] = ("unrepairable_geometry",
                           "The polygon is invalid and make_valid left no area; "
                           "redraw it in the source file.")
            geoms[i] = None
        else:
            geoms[i] = fixed
            repaired[i] = True
    _check_range(geoms, problems)
    return PreparedGeometries(geoms, repaired, problems)


def _projector(transformer: Transformer) -> Any:
    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        out = coords.copy()
        out[:, 0], out[:, 1] = x, y
        return out
    return project


def _polygonal_only(geoms: np.ndarray, problems: list[tuple[str, str] | None]) -> np.ndarray:
    types = shapely.get_type_id(geoms)
    for i in np.flatnonzero((types != 3) & (types != 6) & (types != -1)):
        parts = _polygon_parts(geoms[i])
        if parts is None:
            problems[i] = ("not_polygon",
                           f"The geometry is a {geoms[i].geom_type}, not a polygon; "
                           "parcels must be polygons.")
            geoms[i] = None
        else:
            geoms[i] = parts
    return geoms


def _polygon_parts(geom: Any) -> Any:
    """The polygonal part of a geometry (or collection) or None if it has none."""
    if geom is None or geom.is_empty:
        return None
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    polygons = [q for p in parts for q in shapely.get_parts(p) if not q.is_empty]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else shapely.multipolygons(polygons)


def _repair(geom: Any) -> Any:
    fixed = _polygon_parts(shapely.make_valid(geom))
    if fixed is None or fixed.is_empty or fixed.area == 0:
        return None
    if not fixed.is_valid:  # parts that touch along an edge: merge them
        fixed = _polygon_parts(shapely.union_all(shapely.get_parts(fixed)))
    return fixed if fixed is not None and fixed.is_valid else None


def _check_range(geoms: np.ndarray, problems: list[tuple[str, str] | None]) -> None:
    bounds = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        ok = (np.isfinite(bounds).all(axis=1) & (bounds[:, 0] >= -180) & (bounds[:, 2] <= 180)
              & (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90))
    for i in np.flatnonzero(~ok & ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)):
        problems[i] = ("out_of_range",
                       "After reprojection the polygon is not on Earth (coordinates "
                       "outside longitude/latitude); the source CRS is probably wrong.")
        geoms[i] = None
