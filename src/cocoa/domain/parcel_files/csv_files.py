"""CSV parcel files: a WKT or GeoJSON geometry column, read by Python's csv module."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException

from cocoa.domain.errors import InputError, Problem
from cocoa.domain.parcel_files.crs import as_bounds, choose_crs
from cocoa.domain.parcel_files.info import ParcelFileInfo, no_features
from cocoa.domain.parcel_files.mapping import resolve_mapping
from cocoa.domain.parcel_files.sniffing import Located
from cocoa.domain.parcel_files.staging import StagedFile
from cocoa.domain.voter_files import MAX_HEADER_COLUMNS, read_header_line, too_many_columns

_GEOMETRY_COLUMNS = ("wkt", "geometry", "geom", "the_geom", "wkt_geom", "shape", "geojson")
_CSV_SAMPLE = 1000
_SAMPLE_TEXT_CHARS = 1024 * 1024
"""Geometry texts longer than this are counted but left out of the sample
that guesses the CRS: a parcel's WKT is at most a few hundred KB, and
parsing a sample of giant ones would make validation cost what they cost."""


def csv_rows(path: str) -> Iterator[list[str]]:
    """Rows of a CSV in UTF-8 (BOM tolerated) or, failing that, cp1252."""
    csv.field_size_limit(max(csv.field_size_limit(), 256 * 1024 * 1024))
    encoding = _csv_encoding(path)
    with open(path, encoding=encoding, newline="") as handle:
        yield from csv.reader(handle)


def _csv_encoding(path: str) -> str:
    with open(path, "rb") as handle:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        try:
            while chunk := handle.read(1024 * 1024):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return "utf-8-sig"
        except UnicodeDecodeError:
            return "cp1252"


def inspect_csv(
    staged: StagedFile, located: Located, source_crs: str | None,
    mapping: dict[str, Any] | None,
) -> ParcelFileInfo:
    _check_csv_header(staged.path)
    rows = csv_rows(staged.path)
    header = next(rows, None)
    if not header:
        raise InputError("The CSV is empty.", code="empty_file", problem=Problem.UNPROCESSABLE)
    if len(header) > MAX_HEADER_COLUMNS:
        raise too_many_columns(len(header), "comma")
    geometry_index = _geometry_column(header, mapping)
    fields = [h for i, h in enumerate(header) if i != geometry_index]
    count, sample = _csv_sample(rows, geometry_index)
    if count == 0:
        raise no_features()
    preset, resolved = resolve_mapping(fields, mapping)
    crs, origin = choose_crs(None, source_crs, _sample_bounds(sample))
    return ParcelFileInfo(
        format="csv", container=located.container, inner_path=located.inner_path, layer=None,
        crs=crs, crs_origin=origin, preset=preset, mapping=resolved, feature_count=count,
        fields=fields, geometry_field=header[geometry_index])


def _check_csv_header(path: str) -> None:
    """Refuse (422) a first line over the voter files' header bound before
    the CSV reader sees it: a file with no line breaks would otherwise be
    one giant header, echoed back in the "no geometry column" message. The
    physical first non-blank line is checked, as a header row never holds a
    quoted line break."""
    with open(path, "rb") as handle:
        read_header_line(handle)


def _csv_sample(rows: Iterator[list[str]], geometry_index: int) -> tuple[int, list[str]]:
    """(non-blank data rows, the first geometry texts of at most
    :data:`_SAMPLE_TEXT_CHARS`): the texts tell whether coordinates look
    like lon/lat."""
    count = 0
    sample: list[str] = []
    for row in rows:
        if not any(row):
            continue
        count += 1
        if (len(sample) < _CSV_SAMPLE and geometry_index < len(row)
                and len(row[geometry_index]) <= _SAMPLE_TEXT_CHARS):
            sample.append(row[geometry_index])
    return count, sample


def _sample_bounds(sample: Sequence[str]) -> tuple[float, float, float, float]:
    """Bounds of the parsable sampled geometries; NaN when there are none."""
    geoms = parse_text_geometries(sample)
    if not len(geoms):
        return as_bounds(None)
    return as_bounds(shapely.total_bounds(geoms))


def _geometry_column(header: Sequence[str], mapping: dict[str, Any] | None) -> int:
    lowered = [h.strip().lower() for h in header]
    wanted = (mapping or {}).get("geometry_field")
    names = [str(wanted).lower()] if wanted else list(_GEOMETRY_COLUMNS)
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise InputError(
        "The CSV has no geometry column: name it WKT (or geometry/geom/the_geom) holding WKT "
        "or GeoJSON, or send mapping 'geometry_field'. "
        f"Columns: {', '.join(header)}.",
        code="csv_no_geometry", problem=Problem.UNPROCESSABLE, details={"columns": list(header)})


def parse_text_geometries(values: Sequence[str | None]) -> np.ndarray:
    """WKT or GeoJSON strings to shapely geometries; unparsable → None."""
    return parse_text_geometries_checked(values)[0]


def parse_text_geometries_checked(
    values: Sequence[str | None],
) -> tuple[np.ndarray, dict[int, str]]:
    """:func:`parse_text_geometries`, and for each text that could not be
    parsed (position -> message) why, for the feature's item error."""
    out = np.empty(len(values), dtype=object)
    unparsed: dict[int, str] = {}
    for i, value in enumerate(values):
        text = (value or "").strip()
        if not text:
            out[i] = None
            continue
        geojson = text.startswith("{")
        parse = shapely.from_geojson if geojson else shapely.from_wkt
        out[i] = parse(text, on_invalid="ignore")
        if out[i] is None:
            unparsed[i] = _unparsable(text, "GeoJSON" if geojson else "WKT", parse)
    return out, unparsed


def _unparsable(text: str, kind: str, parse: Any) -> str:
    """The item error message for geometry text the parser refused (parsed
    again, raising, only to tell why: this is the rare path)."""
    try:
        parse(text)
        reason = "it is not a geometry"
    except (GEOSException, ValueError) as exc:
        reason = str(exc).removeprefix("ParseException: ")
    return (f"The geometry {kind} could not be parsed ({reason[:200]}): "
            f"{text[:60]!r}{'...' if len(text) > 60 else ''}; fix it in the source file.")
