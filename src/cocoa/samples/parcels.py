"""A seeded synthetic town: parcels with their mess, and the households living there.

Tests and benchmarks need parcel files in every supported format and a set of
households whose correct parcel is known, so linking can be *scored*. Nothing
binary is committed: everything is generated here with pyogrio, shapely and
pyproj, fast enough for 100,000 parcels in a few seconds (geometry is built
column-wise with numpy).

The town is a street grid near Durham, NC: each grid row is one street, lots
of ~20 x 30 m face it. Seeded mess, as real county data has it:

* ``bowtie`` - a self-intersecting polygon (make_valid splits it in two);
* ``multi`` - a lot with a detached back piece (a MultiPolygon);
* ``condo`` - stacked condo parcels: one footprint, several APNs and units;
* ``apartment`` (only when asked for, ``apartments=``) - one parcel per
  building, its situs without a unit, with several flats living there: only
  the building's address links them;
* ``placeholder`` - situs ``0 DEFAULT STREET`` (only coordinates can link);
* double spaces inside ``siteadd``;
* one or more duplicate APNs later in the file (the last one must win);
* features with empty geometry (item errors).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyogrio.raw
import shapely
from pyproj import Transformer

LON0, LAT0 = -78.95, 35.95  # Durham County, NC: inside EPSG:2264's area of use
LOT_W, LOT_D, STREET_GAP = 20.0, 30.0, 12.0  # metres
LOTS_PER_ROW = 200
M_PER_DEG_LAT = 110_950.0
M_PER_DEG_LON = 111_320.0 * float(np.cos(np.radians(LAT0)))

STREET_NAMES = [
    "MAIN", "OAK", "ELM", "MAPLE", "PINE", "CEDAR", "WALNUT", "HICKORY", "DOGWOOD", "MAGNOLIA",
    "POPLAR", "BIRCH", "WILLOW", "CHESTNUT", "SPRUCE", "LAUREL", "HOLLY", "ASPEN", "SYCAMORE",
    "JUNIPER", "CHURCH", "MILL", "SPRING", "LAKE", "HILL", "RIVER", "MEADOW", "FOREST", "PARK",
    "RIDGE", "VALLEY", "MARKET", "UNION", "FRANKLIN", "JACKSON", "MADISON", "MONROE", "LINCOLN",
    "WASHINGTON", "JEFFERSON",
]
SUFFIXES = {"ST": "STREET", "AVE": "AVENUE", "RD": "ROAD", "DR": "DRIVE", "LN": "LANE",
            "CT": "COURT", "PL": "PLACE", "BLVD": "BOULEVARD"}
DIRECTIONS = {"": "", "N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST"}
CITIES = ["CEDAR GROVE", "BAHAMA", "ROUGEMONT", "BETHESDA"]

NC_ONEMAP_FIELDS = [
    "parno", "altparno", "ownname", "mailadd", "mcity", "mzip", "siteadd", "scity", "szip",
    "saddno", "saddpref", "saddstr", "saddsttyp", "saddstsuf", "sunit", "parval", "landval",
    "improvval", "parusecode", "parusedesc", "cntyname", "cntyfips", "gisacres",
]
REGRID_FIELDS = [
    "parcelnumb", "address", "saddno", "saddpref", "saddstr", "saddsttyp", "saddstsuf",
    "sunit", "scity", "szip", "state2", "owner",
]


@dataclass(slots=True)
class SampleParcel:
    """One feature as it will be written, plus the truth tests need."""

    apn: str
    kind: str  # normal | bowtie | multi | condo | apartment | placeholder | duplicate | empty
    number: int
    predir: str
    street: str
    suffix: str
    unit: str
    city: str
    zip_code: str
    situs: str  # the siteadd/address value written to the file
    owner: str
    geometry: Any  # shapely, WGS84
    interior: tuple[float, float]  # (lon, lat) strictly inside the valid part


@dataclass(frozen=True, slots=True)
class SampleHousehold:
    """A household row to insert, and where linking must put it."""

    street: str
    unit: str | None
    city: str
    state: str
    zip_code: str
    latitude: float | None
    longitude: float | None
    expected_apn: str | None
    expected_method: str | None  # address | building | location | None (must stay unlinked)


@dataclass(slots=True)
class Town:
    schema: str  # nc_onemap | regrid
    parcels: list[SampleParcel]
    households: list[SampleHousehold] = field(default_factory=list)

    @property
    def fields(self) -> list[str]:
        return NC_ONEMAP_FIELDS if self.schema == "nc_onemap" else REGRID_FIELDS

    def final_parcels(self) -> dict[str, SampleParcel]:
        """APN -> the feature that must be stored (last one wins, no empties)."""
        out: dict[str, SampleParcel] = {}
        for p in self.parcels:
            if p.kind != "empty":
                out[p.apn] = p
        return out


# --------------------------------------------------------------------------- generation


def generate_town(
    n_parcels: int = 500, *, seed: int = 7, schema: str = "nc_onemap",
    spelling: str = "basic", households: bool = True, apartments: float = 0.0,
    first_lot: int = 0,
) -> Town:
    """``n_parcels`` features (condos, duplicates and empties included).

    ``spelling`` controls how households spell their addresses: ``basic``
    changes only case and spacing (any normaliser links those), ``usps``
    also spells out suffixes and directionals (``NORTH OAK STREET`` for
    ``N OAK ST``), which only a Publication 28 normaliser links.

    ``apartments`` is the share of ordinary lots that are apartment
    buildings (one parcel, 2-6 flats). They are chosen with a random stream
    of their own, so a town without them is the same as before they existed.

    ``first_lot`` places the town elsewhere on the grid (lot ``k`` is column
    ``k % 200`` of street row ``k // 200``; every 25 rows are another city), so
    two towns - the demo and ``cocoa samples`` - do not share addresses.
    """
    if schema not in ("nc_onemap", "regrid"):
        raise ValueError(f"unknown schema {schema!r}")
    rng = np.random.default_rng(seed)
    parcels: list[SampleParcel] = []
    lot = first_lot
    n_empty = max(1, n_parcels // 500)
    n_dup = max(1, n_parcels // 1000)
    while len(parcels) < n_parcels - n_empty - n_dup:
        parcels.extend(_lot(lot, rng, room=n_parcels - n_empty - n_dup - len(parcels)))
        lot += 1
    parcels.extend(_duplicates(parcels, rng, n_dup))
    parcels.extend(_empties(lot, n_empty))
    _interleave_tail(parcels, rng)
    if apartments > 0:
        _make_apartments(parcels, np.random.default_rng([seed, 15]), apartments)
    town = Town(schema, parcels)
    if households:
        town.households = make_households(town, rng, spelling)
    return town


def _street_of(row: int) -> tuple[str, str, str]:
    base = STREET_NAMES[row % len(STREET_NAMES)]
    suffix = list(SUFFIXES)[(row // len(STREET_NAMES)) % len(SUFFIXES)]
    predir = list(DIRECTIONS)[(row // (len(STREET_NAMES) * len(SUFFIXES))) % len(DIRECTIONS)]
    return predir, base, suffix


def _lot_box(lot: int) -> tuple[float, float, float, float]:
    row, col = divmod(lot, LOTS_PER_ROW)
    x0 = col * LOT_W
    y0 = row * (LOT_D + STREET_GAP)
    return x0 + 0.5, y0, x0 + LOT_W - 0.5, y0 + LOT_D


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return LON0 + x / M_PER_DEG_LON, LAT0 + y / M_PER_DEG_LAT


def _lot(lot: int, rng: np.random.Generator, room: int) -> list[SampleParcel]:
    row, col = divmod(lot, LOTS_PER_ROW)
    predir, street, suffix = _street_of(row)
    number = 100 + 2 * col
    roll = rng.random()
    kind = ("bowtie" if roll < 0.02 else "multi" if roll < 0.04 else
            "placeholder" if roll < 0.05 else "condo" if roll < 0.06 and room >= 3 else "normal")
    geometry, interior = _lot_geometry(lot, kind)
    city = CITIES[(row // 25) % len(CITIES)]
    zip_code = str(27500 + (row // 25) % len(CITIES))
    units = ["1", "2", "3"] if kind == "condo" else [""]
    out = []
    for k, unit in enumerate(units):
        line = _line(number, predir, street, suffix)
        if unit:
            line = f"{line} UNIT {unit}"
        if kind == "placeholder":
            line = "0 DEFAULT STREET"
        elif rng.random() < 0.03:
            line = line.replace(" ", "  ", 2)  # double spaces, as siteadd has them
        out.append(SampleParcel(
            apn=f"{row:05d}{col:03d}{k:02d}", kind=kind, number=number, predir=predir,
            street=street, suffix=suffix, unit=unit, city=city, zip_code=zip_code,
            situs=line, owner=f"OWNER {lot}", geometry=geometry, interior=interior))
    return out


def lot_parcel(lot: int, unit: str = "") -> SampleParcel:
    """One ordinary lot of the grid, for tests that compose a town of their
    own. With ``unit`` it is one unit's parcel of a condominium (situs
    ``... UNIT <unit>``): the units of one lot share its footprint."""
    row, col = divmod(lot, LOTS_PER_ROW)
    predir, street, suffix = _street_of(row)
    number = 100 + 2 * col
    geometry, interior = _lot_geometry(lot, "normal")
    line = _line(number, predir, street, suffix)
    return SampleParcel(
        apn=f"{row:05d}{col:03d}{unit or '00':0>2}", kind="condo" if unit else "normal",
        number=number, predir=predir, street=street, suffix=suffix, unit=unit,
        city=CITIES[(row // 25) % len(CITIES)], zip_code=str(27500 + (row // 25) % len(CITIES)),
        situs=f"{line} UNIT {unit}" if unit else line, owner=f"OWNER {lot}",
        geometry=geometry, interior=interior)


def _line(number: int, predir: str, street: str, suffix: str) -> str:
    return " ".join(p for p in (str(number), predir, street, suffix) if p)


def _lot_geometry(lot: int, kind: str) -> tuple[Any, tuple[float, float]]:
    x0, y0, x1, y1 = _lot_box(lot)
    ym = (y0 + y1) / 2
    if kind == "bowtie":  # edges cross at the centre: two triangles, left and right
        ring = [(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)]
        inside = (x0 + (x1 - x0) / 6, ym)
        return shapely.Polygon([_lonlat(*p) for p in ring]), _lonlat(*inside)
    box = shapely.Polygon([_lonlat(x0, y0), _lonlat(x1, y0), _lonlat(x1, y1), _lonlat(x0, y1)])
    inside = ((x0 + x1) / 2, ym)
    if kind == "multi":  # a detached shed lot inside the same block, behind a gap
        back = shapely.Polygon([_lonlat(x0 + 4, y1 + 1), _lonlat(x1 - 4, y1 + 1),
                                _lonlat(x1 - 4, y1 + 4), _lonlat(x0 + 4, y1 + 4)])
        return shapely.MultiPolygon([box, back]), _lonlat(*inside)
    return box, _lonlat(*inside)


def _duplicates(parcels: list[SampleParcel], rng: np.random.Generator, n: int) -> list[SampleParcel]:
    """Re-issue earlier normal parcels with a new owner: the later one wins."""
    normal = [p for p in parcels if p.kind == "normal"]
    picks = rng.choice(len(normal), size=min(n, len(normal)), replace=False)
    out = []
    for i in sorted(int(v) for v in picks):
        p = normal[i]
        p.kind = "duplicate"
        out.append(replace(p, owner=f"{p.owner} (UPDATED)"))
    return out


def _make_apartments(parcels: list[SampleParcel], rng: np.random.Generator,
                     share: float) -> None:
    """Turn about ``share`` of the ordinary lots into apartment buildings."""
    for p in parcels:
        if p.kind == "normal" and rng.random() < share:
            p.kind = "apartment"


def _empties(lot: int, n: int) -> list[SampleParcel]:
    return [SampleParcel(
        apn=f"EMPTY{i:05d}", kind="empty", number=0, predir="", street="", suffix="", unit="",
        city=CITIES[0], zip_code="27500", situs="", owner="NOBODY",
        geometry=shapely.from_wkt("POLYGON EMPTY"), interior=(LON0, LAT0),
    ) for i in range(n)]


def _interleave_tail(parcels: list[SampleParcel], rng: np.random.Generator) -> None:
    """Spread the empty features through the file so several batches see one."""
    empties = [p for p in parcels if p.kind == "empty"]
    rest = [p for p in parcels if p.kind != "empty"]
    for p in empties:
        rest.insert(int(rng.integers(0, len(rest) + 1)), p)
    parcels[:] = rest


# --------------------------------------------------------------------------- households


def make_households(town: Town, rng: np.random.Generator, spelling: str) -> list[SampleHousehold]:
    """One household per addressable parcel, with the link it must get.

    * address households spell the situs differently (case, spaces, and
      with ``usps`` the long forms of suffixes/directionals);
    * the flats of an apartment building spell its address and have a unit
      (``1A``, ``1B``, ...) that no parcel carries: the building links them;
    * parcels with a placeholder situs get a household with the real address
      (not in the parcel data) and coordinates: only location can link it;
    * some households at odd house numbers (absent from the parcel data) have
      coordinates inside a lot: location links them;
    * a few are outside the town entirely, or geocoded into a street: unlinked.
    """
    spell = _speller(spelling, rng)
    out: list[SampleHousehold] = []
    for p in town.final_parcels().values():
        out.extend(_households_for(p, rng, spell))
    for i in range(max(2, len(out) // 100)):
        out.append(_stranger(i, rng))
    return out


def _households_for(
    p: SampleParcel, rng: np.random.Generator, spell: Callable[[SampleParcel], str],
) -> list[SampleHousehold]:
    lon, lat = p.interior
    geocoded = rng.random() < 0.5
    coords: tuple[float | None, float | None] = (lat, lon) if geocoded else (None, None)
    real_line = _line(p.number, p.predir, p.street, p.suffix)
    if p.kind == "placeholder":
        return [SampleHousehold(real_line, None, p.city, "NC", p.zip_code, lat, lon,
                                p.apn, "location")]
    if p.kind == "apartment":
        return [SampleHousehold(spell(p), flat_unit(k), p.city, "NC", p.zip_code, *coords,
                                p.apn, "building") for k in range(int(rng.integers(2, 7)))]
    hh = [SampleHousehold(spell(p), None, p.city, "NC", p.zip_code, *coords, p.apn, "address")]
    if p.kind in ("normal", "bowtie", "multi") and rng.random() < 0.1:
        odd = _line(p.number + 1, p.predir, p.street, p.suffix)  # not in the parcel data
        hh.append(SampleHousehold(odd, None, p.city, "NC", p.zip_code, lat, lon,
                                  p.apn, "location"))
    return hh


def flat_unit(k: int) -> str:
    """The ``k``-th flat of a building: 1A, 1B, 1C, 1D, 2A, ..."""
    return f"{1 + k // 4}{'ABCD'[k % 4]}"


def _stranger(i: int, rng: np.random.Generator) -> SampleHousehold:
    if i % 2:  # geocoded into the middle of a street: no parcel contains it
        lon, lat = _lonlat(LOT_W * 3.5, LOT_D + STREET_GAP / 2)
        return SampleHousehold(f"{9001 + 2 * i} NOWHERE RD", None, CITIES[0], "NC", "27500",
                               lat, lon, None, None)
    return SampleHousehold(f"{9001 + 2 * i} ELSEWHERE AVE", None, "FARAWAY", "NC", "28999",
                           None, None, None, None)


def _speller(spelling: str, rng: np.random.Generator) -> Callable[[SampleParcel], str]:
    def basic(p: SampleParcel) -> str:
        line = _line(p.number, p.predir, p.street, p.suffix)
        if p.unit:
            line = f"{line} UNIT {p.unit}"
        line = line.title() if rng.random() < 0.5 else line.lower()
        return line.replace(" ", "   ", 1) if rng.random() < 0.3 else line

    def usps(p: SampleParcel) -> str:
        predir = DIRECTIONS[p.predir] if p.predir and rng.random() < 0.7 else p.predir
        suffix = SUFFIXES[p.suffix] if rng.random() < 0.7 else p.suffix
        line = _line(p.number, predir, p.street, suffix)
        if p.unit:
            line = f"{line} {'APT' if rng.random() < 0.5 else '#'} {p.unit}"
        return line.title() if rng.random() < 0.5 else line

    if spelling not in ("basic", "usps"):
        raise ValueError(f"unknown spelling {spelling!r}")
    return basic if spelling == "basic" else usps


# --------------------------------------------------------------------------- columns


def _columns(town: Town) -> tuple[list[str], list[np.ndarray]]:
    rows = [_record(town.schema, p) for p in town.parcels]
    names = town.fields
    arrays = []
    for name in names:
        values = [r[name] for r in rows]
        if name in ("parval", "landval", "improvval"):
            arrays.append(np.array(values, dtype=np.int32))
        elif name == "gisacres":
            arrays.append(np.array(values, dtype=np.float64))
        else:
            arrays.append(np.array(values, dtype=object))
    return names, arrays


def _record(schema: str, p: SampleParcel) -> dict[str, Any]:
    parts = {"saddno": str(p.number) if p.kind not in ("placeholder", "empty") else "0",
             "saddpref": p.predir or None, "saddstr": p.street or None,
             "saddsttyp": p.suffix or None, "saddstsuf": None, "sunit": p.unit or None,
             "scity": p.city, "szip": p.zip_code}
    if p.kind == "placeholder":
        parts.update(saddpref=None, saddstr="DEFAULT", saddsttyp="STREET")
    if schema == "regrid":
        return {"parcelnumb": p.apn, "address": p.situs, **parts, "state2": "NC",
                "owner": p.owner}
    value = 50_000 + zlib.crc32(p.apn.encode()) % 400_000
    return {"parno": p.apn, "altparno": f"A{p.apn}", "ownname": p.owner,
            "mailadd": p.situs or None, "mcity": p.city, "mzip": p.zip_code,
            "siteadd": p.situs, **parts, "parval": value, "landval": value // 3,
            "improvval": value - value // 3, "parusecode": "R", "parusedesc": "RESIDENTIAL",
            "cntyname": "DURHAM", "cntyfips": "063", "gisacres": 0.15}


def _wkb(town: Town, crs: str | None = None) -> np.ndarray:
    geoms = np.array([p.geometry for p in town.parcels], dtype=object)
    if crs and crs.upper() != "EPSG:4326":
        transformer = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(
            transformer.transform(xy[:, 0], xy[:, 1])))
    wkb = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        wkb[i] = None if g is None or g.is_empty else shapely.to_wkb(g)
    return wkb


# --------------------------------------------------------------------------- writers


def to_geojson(town: Town) -> bytes:
    names, arrays = _columns(town)
    out = io.BytesIO()
    pyogrio.raw.write(out, _wkb(town), arrays, names, driver="GeoJSON",
                      geometry_type="Unknown", crs="EPSG:4326", layer="parcels")
    return out.getvalue()


def to_gpkg(town: Town, crs: str = "EPSG:4326") -> bytes:
    names, arrays = _columns(town)
    out = io.BytesIO()
    pyogrio.raw.write(out, _wkb(town, crs), arrays, names, driver="GPKG",
                      geometry_type="MultiPolygon", promote_to_multi=True, crs=crs,
                      layer="parcels")
    return out.getvalue()


def to_shapefile_zip(
    town: Town, crs: str = "EPSG:2264", *, prj: bool = True, folder: str = "",
) -> bytes:
    """A zipped shapefile, by default in NC State Plane US feet like county data."""
    names, arrays = _columns(town)
    with tempfile.TemporaryDirectory(prefix="cocoa-sample-") as tmp:
        path = os.path.join(tmp, "parcels.shp")
        pyogrio.raw.write(path, _wkb(town, crs), arrays, names, driver="ESRI Shapefile",
                          geometry_type="Polygon", crs=crs, encoding="UTF-8")
        if not prj:
            os.unlink(os.path.join(tmp, "parcels.prj"))
        return _zip_dir(tmp, folder)


def to_filegdb_zip(town: Town, crs: str = "EPSG:4326") -> bytes:
    names, arrays = _columns(town)
    with tempfile.TemporaryDirectory(prefix="cocoa-sample-") as tmp:
        pyogrio.raw.write(os.path.join(tmp, "town.gdb"), _wkb(town, crs), arrays, names,
                          driver="OpenFileGDB", geometry_type="MultiPolygon",
                          promote_to_multi=True, crs=crs, layer="parcels")
        return _zip_dir(tmp, "")


def to_csv(town: Town, geometry: str = "wkt") -> bytes:
    """CSV with a ``WKT`` column (or ``geometry`` holding GeoJSON)."""
    names, arrays = _columns(town)
    column = "WKT" if geometry == "wkt" else "geometry"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*names, column])
    for i, p in enumerate(town.parcels):
        g = p.geometry
        text = "" if g is None or g.is_empty else (
            shapely.to_wkt(g, rounding_precision=-1) if geometry == "wkt"
            else json.dumps(json.loads(shapely.to_geojson(g))))
        writer.writerow([*(_csv_value(a[i]) for a in arrays), text])
    return out.getvalue().encode("utf-8")


def _csv_value(value: Any) -> str:
    return "" if value is None else str(value)


def _zip_dir(root: str, folder: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, _dirs, files in os.walk(root):
            for name in sorted(files):
                full = os.path.join(dirpath, name)
                arcname = os.path.relpath(full, root).replace(os.sep, "/")
                zf.write(full, f"{folder}/{arcname}" if folder else arcname)
    return out.getvalue()


WRITERS: dict[str, Callable[[Town], bytes]] = {
    "geojson": to_geojson, "shapefile": to_shapefile_zip, "gpkg": to_gpkg,
    "filegdb": to_filegdb_zip, "csv": to_csv,
}
