"""Everything the job needs to know before it is accepted.

Format, layer, CRS, field mapping and feature count; a file the job could
not import is refused here with a message that says what to do.
"""

from __future__ import annotations

import io
import zipfile
from typing import IO, Any

import pyogrio

from cocoa.domain.errors import InputError, Problem
from cocoa.domain.parcel_files.crs import as_bounds, choose_crs, parse_crs
from cocoa.domain.parcel_files.csv_files import inspect_csv
from cocoa.domain.parcel_files.info import ParcelFileInfo, no_features, stored_layer
from cocoa.domain.parcel_files.mapping import resolve_mapping
from cocoa.domain.parcel_files.sniffing import Located, head_of, locate_in_zip, sniff_format
from cocoa.domain.parcel_files.staging import StagedFile, gdal_path, scrub_paths, stage_upload
from cocoa.domain.voter_files import MAX_HEADER_COLUMNS
from cocoa.domain.zip_safety import DEFAULT_ZIP_LIMITS, ZipLimits, check_zip_safety


def inspect_parcel_file(
    data: bytes | IO[bytes],
    filename: str | None = None,
    source_crs: str | None = None,
    mapping: dict[str, Any] | None = None,
    max_items: int = 100_000,
    layer: str | None = None,
    zip_limits: ZipLimits = DEFAULT_ZIP_LIMITS,
) -> ParcelFileInfo:
    """Everything the job needs to know before it is accepted: format, CRS,
    field mapping and feature count (refused above ``max_items``)."""
    if source_crs:
        parse_crs(source_crs)  # a bad CRS is reported before any parsing work
    located = _locate(data, filename, zip_limits)
    with stage_upload(data, located) as staged:
        if located.format == "csv":
            info = inspect_csv(staged, located, source_crs, mapping)
        else:
            info = _inspect_gdal(staged, located, source_crs, mapping, layer)
    if info.feature_count > max_items:
        raise InputError(
            f"The file has {info.feature_count:,} features; one upload may hold at most "
            f"{max_items:,} (COCOA_MAX_ITEMS_PER_GROUP). Split the file (e.g. by county or area) "
            "and import the parts, or ask the administrator to raise the limit.",
            code="too_many_items", problem=Problem.UNPROCESSABLE,
            details={"features": info.feature_count, "limit": max_items})
    if info.feature_count == 0:
        raise InputError("The file holds no features.", code="empty_file", problem=Problem.UNPROCESSABLE)
    return info


def _locate(data: bytes | IO[bytes], filename: str | None, limits: ZipLimits) -> Located:
    kind = sniff_format(head_of(data), filename)
    if kind != "zip":
        return Located(kind, "plain")
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    try:
        with zipfile.ZipFile(stream) as zf:
            check_zip_safety(zf, limits)
            return locate_in_zip(zf)
    except zipfile.BadZipFile as exc:
        raise InputError(f"The zip is damaged: {exc}.", code="bad_zip", problem=Problem.UNPROCESSABLE) from exc
    finally:
        stream.seek(0)


def _inspect_gdal(
    staged: StagedFile, located: Located, source_crs: str | None,
    mapping: dict[str, Any] | None, layer: str | None,
) -> ParcelFileInfo:
    path = gdal_path(staged, located)
    chosen = _choose_layer(path, layer, located)
    try:
        meta = pyogrio.read_info(path, layer=chosen, force_feature_count=True)
        if int(meta["features"]) == 0:  # before the mapping: an empty file has no columns
            raise no_features()
        fields = [str(f) for f in meta["fields"]]
        if len(fields) > MAX_HEADER_COLUMNS:
            raise _too_many_fields(len(fields))
        preset, resolved = resolve_mapping(fields, mapping)
        bounds: Any = None
        if not (meta.get("crs") or source_crs):  # only then do the coordinates matter
            bounds = pyogrio.read_info(path, layer=chosen, force_total_bounds=True)
            bounds = bounds.get("total_bounds")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise _unreadable(located, exc) from exc
    crs, origin = choose_crs(meta.get("crs"), source_crs, as_bounds(bounds))
    return ParcelFileInfo(
        format=located.format, container=located.container, inner_path=located.inner_path,
        layer=stored_layer(located, chosen), crs=crs, crs_origin=origin, preset=preset,
        mapping=resolved, feature_count=int(meta["features"]), fields=fields)


def _too_many_fields(count: int) -> InputError:
    """The same bound as a CSV header's (:data:`MAX_HEADER_COLUMNS`): a parcel
    layer has a few dozen to a few hundred attribute fields."""
    return InputError(
        f"The layer has {count:,} attribute fields; at most {MAX_HEADER_COLUMNS:,} are "
        "accepted (parcel layers have a few dozen to a few hundred). Export only the parcel "
        "attributes.", code="too_many_columns", problem=Problem.UNPROCESSABLE,
        details={"columns": count, "limit": MAX_HEADER_COLUMNS})


def _choose_layer(path: str, wanted: str | None, located: Located) -> str | None:
    """The one polygon layer; several need an explicit ``layer`` param."""
    try:
        layers = [(str(n), str(g)) for n, g in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as exc:
        raise _unopenable(located, exc) from exc
    names = [n for n, _ in layers]
    if wanted:
        if wanted not in names:
            raise InputError(
                scrub_paths(f"Layer {wanted!r} is not in the file; its layers are {names}."),
                code="unknown_layer", problem=Problem.UNPROCESSABLE)
        return wanted
    polygonal = [n for n, g in layers if "polygon" in g.lower() or g.lower() in ("unknown", "none")]
    candidates = polygonal or names
    if len(candidates) > 1:
        raise InputError(
            f"The file has several layers {candidates}; send 'layer' to pick one.",
            code="several_layers", problem=Problem.UNPROCESSABLE, details={"layers": candidates})
    if not candidates:
        raise InputError("The file has no layers.", code="empty_file", problem=Problem.UNPROCESSABLE)
    return candidates[0]


def _unreadable(located: Located, exc: Exception) -> InputError:
    return InputError(
        f"The {located.format} file could not be read: {scrub_paths(str(exc))}",
        code="unreadable_file", problem=Problem.UNPROCESSABLE)


_NOT_RECOGNISED = "not recognized as being in a supported file format"


def _unopenable(located: Located, exc: Exception) -> InputError:
    """GDAL could not open the staged upload at all."""
    text = str(exc)
    if _NOT_RECOGNISED in text and located.format == "geojson":
        return InputError(
            "The file is JSON but not a GeoJSON FeatureCollection: expected "
            '{"type": "FeatureCollection", "features": [...]} with polygon features.',
            code="not_geojson", problem=Problem.UNPROCESSABLE)
    if _NOT_RECOGNISED in text:
        return InputError(
            f"The {located.format} file is not in a format that can be read; check that it "
            "is not damaged or truncated.", code="unreadable_file", problem=Problem.UNPROCESSABLE)
    return InputError(f"The file could not be opened: {scrub_paths(text)}",
                              code="unreadable_file", problem=Problem.UNPROCESSABLE)
