"""Reading parcel files: format sniffing, zip safety, CRS, field mapping, slices.

Parcel data arrives as GeoJSON, a zipped shapefile, a GeoPackage, a zipped
File Geodatabase or a CSV with a WKT/GeoJSON geometry column. Everything here
works on an upload the client sent, so:

* the format is decided from the bytes (magic numbers, zip directory), the
  client's file name is only a hint for error messages;
* GDAL reads a copy staged under a server-generated temporary name; a path
  inside a zip is only ever *read* through ``/vsizip/`` after the zip
  directory passed :func:`check_zip_safety`;
* features are read in slices (``skip_features``/``max_features``) so a batch
  never needs the whole file in memory, and the checkpoint is a feature index.

Problems the client can fix raise :class:`JobValidationError` with a message
that says what to do.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import math
import os
import re
import shutil
import stat
import tempfile
import weakref
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from typing import IO, Any

import numpy as np
import pyogrio
import pyogrio.raw
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.errors import GEOSException

from cocoa.domain.addresses import household_key
from cocoa.domain.voter_files import MAX_HEADER_COLUMNS, read_header_line, too_many_columns
from cocoa.jobs.types import JobValidationError

FORMATS = ("geojson", "shapefile", "gpkg", "filegdb", "csv")
WGS84 = "EPSG:4326"

# ----------------------------------------------------------------------------- zip safety


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Bounds that keep a hostile zip from exhausting memory or disk.

    Honest parcel zips hold a handful of files (a File Geodatabase a few
    dozen) and compress 3-30:1; dBase files full of padding can reach ~100:1,
    a zip bomb reaches 1000:1. Small entries are exempt from the ratio test
    because a few KB of zeros is harmless whatever its ratio.
    """

    max_entries: int = 2_000
    max_total_uncompressed: int = 4 * 1024**3
    max_ratio: float = 200.0
    ratio_min_bytes: int = 1024 * 1024


DEFAULT_ZIP_LIMITS = ZipLimits()


def check_zip_safety(zf: zipfile.ZipFile, limits: ZipLimits = DEFAULT_ZIP_LIMITS) -> None:
    """Refuse archives that are bombs or try to escape with their paths.

    Nothing is ever extracted to disk, but GDAL follows the directory, so a
    ``..`` or absolute name is refused outright rather than trusted.
    """
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _too_large(
            f"The zip has {len(infos)} entries; at most {limits.max_entries} are accepted. "
            "Zip only the parcel dataset's own files.", code="zip_too_many_entries")
    total = 0
    for info in infos:
        _check_zip_name(info)
        total += info.file_size
        _check_ratio(info, limits)
    if total > limits.max_total_uncompressed:
        raise _too_large(
            f"The zip expands to {total:,} bytes; the limit is "
            f"{limits.max_total_uncompressed:,}.", code="zip_too_large")


def _check_zip_name(info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = re.split(r"[\\/]", name)
    unsafe = (
        name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None
        or ".." in parts or "\x00" in name
    )
    if unsafe:
        raise JobValidationError(
            f"The zip entry {name!r} has an absolute or '..' path and is refused. "
            "Re-create the zip from inside the dataset's folder.",
            code="zip_unsafe_path", status=422)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise JobValidationError(
            f"The zip entry {name!r} is a symbolic link; links are refused.",
            code="zip_unsafe_path", status=422)
    if info.flag_bits & 0x1:
        raise JobValidationError(
            f"The zip entry {name!r} is encrypted; upload an unencrypted zip.",
            code="zip_encrypted", status=422)


def _check_ratio(info: zipfile.ZipInfo, limits: ZipLimits) -> None:
    if info.file_size < limits.ratio_min_bytes:
        return
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > limits.max_ratio:
        raise _too_large(
            f"The zip entry {info.filename!r} expands {ratio:.0f}:1 "
            f"({info.file_size:,} bytes from {info.compress_size:,}); more than "
            f"{limits.max_ratio:.0f}:1 looks like a zip bomb and is refused.",
            code="zip_bomb")


def _too_large(message: str, *, code: str) -> JobValidationError:
    return JobValidationError(message, code=code, status=413)


# ----------------------------------------------------------------------------- staging


class StagedFile:
    """The upload copied to a temporary file with a server-generated name.

    GDAL needs a path (a zipped File Geodatabase cannot be opened from a
    buffer). The file is removed by :meth:`close`, or - when it lives in a
    per-run cache that nobody closes - when the object is garbage collected
    or the process exits.
    """

    def __init__(self, data: bytes | IO[bytes], suffix: str) -> None:
        fd, path = tempfile.mkstemp(prefix="cocoa-parcels-", suffix=suffix)
        self.path = path
        self._finalizer = weakref.finalize(self, _remove_quietly, path)
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, bytes | bytearray | memoryview):
                out.write(data)
            else:
                rewind = data.seekable()
                if rewind:
                    data.seek(0)
                shutil.copyfileobj(data, out, 1024 * 1024)
                if rewind:
                    data.seek(0)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# ----------------------------------------------------------------------------- sniffing

_SQLITE_MAGIC = b"SQLite format 3\x00"
_GPKG_APPLICATION_IDS = (b"GPKG", b"GP10", b"GP11")
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_SHP_MAGIC = b"\x00\x00\x27\x0a"
_INNER_SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".csv": "csv"}


@dataclass(frozen=True, slots=True)
class Located:
    """Where the dataset is inside the staged upload."""

    format: str
    container: str  # "plain" | "zip"
    inner_path: str | None = None  # inside the zip; validated entry name

    @property
    def staged_suffix(self) -> str:
        if self.container == "zip":
            return ".zip"
        return {"geojson": ".geojson", "gpkg": ".gpkg", "csv": ".csv"}[self.format]


def _head(data: bytes | IO[bytes], size: int = 4096) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data[:size])
    data.seek(0)
    head = data.read(size)
    data.seek(0)
    return head


def sniff_format(head: bytes, filename: str | None) -> str:
    """``zip``, ``gpkg``, ``geojson`` or ``csv`` from the first bytes.

    The file name only sharpens the error message: a ``.shp`` sent alone is
    refused with the list of files that must be zipped together.
    """
    hint = (filename or "").lower()
    if head.startswith(_ZIP_MAGICS):
        return "zip"
    if head.startswith(_SQLITE_MAGIC):
        if head[68:72] in _GPKG_APPLICATION_IDS or hint.endswith(".gpkg"):
            return "gpkg"
        raise JobValidationError(
            "The file is an SQLite database but not a GeoPackage.",
            code="unsupported_format", status=415)
    if head.startswith(_SHP_MAGIC) or hint.endswith((".shp", ".dbf", ".shx")):
        raise JobValidationError(
            "A shapefile is several files: zip the .shp, .shx, .dbf and .prj "
            "(and .cpg if present) together and upload the zip.",
            code="shapefile_not_zipped", status=415)
    text = _decode_head(head)
    if text is None:
        raise JobValidationError(
            f"Unrecognised file{f' {filename!r}' if filename else ''}: expected GeoJSON, "
            "a zipped shapefile, a GeoPackage, a zipped File Geodatabase (.gdb folder) "
            "or a CSV with a WKT or GeoJSON geometry column.",
            code="unsupported_format", status=415)
    if text.lstrip().startswith(("{", "[")):
        return "geojson"
    return "csv"


def _decode_head(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return codecs.getincrementaldecoder(encoding)().decode(head)
        except UnicodeDecodeError:
            continue
    return None


def locate_in_zip(zf: zipfile.ZipFile) -> Located:
    """Find the one dataset a zip holds: a ``.gdb`` folder, a ``.shp``, or a
    single GeoJSON/GeoPackage/CSV file."""
    names = [i.filename for i in zf.infolist() if not i.is_dir()]
    gdbs = sorted({_gdb_root(n) for n in names if _gdb_root(n)})
    shps = sorted(n for n in names if n.lower().endswith(".shp") and not _is_macos_junk(n))
    others = sorted(
        n for n in names if os.path.splitext(n.lower())[1] in _INNER_SUFFIXES
        and not _is_macos_junk(n)
    )
    if len(gdbs) + len(shps) > 1 or (not gdbs and not shps and len(others) > 1):
        found = ", ".join([*gdbs, *shps, *others][:10])
        raise JobValidationError(
            f"The zip holds several datasets ({found}); upload one per job.",
            code="zip_ambiguous", status=422, details={"datasets": [*gdbs, *shps, *others]})
    if gdbs:
        return Located("filegdb", "zip", gdbs[0])
    if shps:
        _require_shapefile_parts(shps[0], names)
        return _checked_member(zf, Located("shapefile", "zip", shps[0]))
    if others:
        fmt = _INNER_SUFFIXES[os.path.splitext(others[0].lower())[1]]
        return _checked_member(zf, Located(fmt, "zip", others[0]))
    raise JobValidationError(
        "The zip holds no parcel dataset: expected a .shp (with .shx, .dbf, .prj), "
        "a .gdb folder, or a .geojson/.gpkg/.csv file.",
        code="zip_no_dataset", status=422)


def _checked_member(zf: zipfile.ZipFile, located: Located) -> Located:
    """The member's content must match its extension.

    GDAL picks a driver by content, so a ``.shp`` or ``.geojson`` that is
    really, say, a VRT (XML that can point GDAL at any file on the server)
    is refused here instead of being opened.
    """
    with zf.open(located.inner_path or "") as member:
        head = member.read(4096)
    if located.format == "shapefile":
        ok = head.startswith(_SHP_MAGIC)
    elif located.format == "csv":
        ok = True  # read by Python's csv module, never by GDAL
    else:
        try:
            ok = sniff_format(head, None) == located.format
        except JobValidationError:
            ok = False
    if not ok:
        raise JobValidationError(
            f"The zip member {located.inner_path!r} is not the {located.format} file its "
            "name says it is.", code="unsupported_format", status=415)
    return located


def _gdb_root(name: str) -> str:
    parts = name.replace("\\", "/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower().endswith(".gdb"):
            return "/".join(parts[: i + 1])
    return ""


def _is_macos_junk(name: str) -> bool:
    return name.startswith("__MACOSX/") or os.path.basename(name).startswith("._")


def _require_shapefile_parts(shp: str, names: Sequence[str]) -> None:
    stem = shp[:-4].lower()
    present = {n.lower() for n in names}
    missing = [ext for ext in (".shx", ".dbf") if stem + ext not in present]
    if missing:
        raise JobValidationError(
            f"The shapefile {shp!r} is missing {', '.join(missing)}; zip all of its files.",
            code="shapefile_incomplete", status=422)


def stage_upload(data: bytes | IO[bytes], located: Located) -> StagedFile:
    """Copy the upload where GDAL can open it.

    A zip is re-packed *uncompressed* with only the dataset's own members:
    GDAL can then seek inside it, whereas a deflated ``.shp`` would be
    re-inflated from the top by every batch (quadratic on big files). The
    archive already passed :func:`check_zip_safety`, and ``zipfile`` stops at
    each member's declared size, so the copy is bounded.
    """
    if located.container != "zip":
        return StagedFile(data, located.staged_suffix)
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    if located.format == "csv":  # read by Python's csv module: stage the member itself
        with zipfile.ZipFile(stream) as src, src.open(located.inner_path or "") as member:
            staged = StagedFile(member, ".csv")
        stream.seek(0)
        return staged
    staged = StagedFile(b"", ".zip")
    try:
        with zipfile.ZipFile(stream) as src, \
                zipfile.ZipFile(staged.path, "w", zipfile.ZIP_STORED, allowZip64=True) as dst:
            for info in src.infolist():
                if info.is_dir() or not _belongs(info.filename, located):
                    continue
                with src.open(info) as reader, dst.open(
                    zipfile.ZipInfo(info.filename), "w", force_zip64=info.file_size > 2**31,
                ) as writer:
                    shutil.copyfileobj(reader, writer, 1024 * 1024)
    except BaseException:
        staged.close()
        raise
    finally:
        stream.seek(0)
    return staged


def _belongs(name: str, located: Located) -> bool:
    inner = located.inner_path or ""
    if located.format == "filegdb":
        return name.startswith(inner + "/")
    if located.format == "shapefile":
        return os.path.splitext(name)[0].lower() == os.path.splitext(inner)[0].lower()
    return name == inner


def gdal_path(staged: StagedFile, located: Located) -> str:
    """The GDAL path of the dataset: the staged file or a path inside it."""
    if located.container == "zip":
        return f"/vsizip/{{{staged.path}}}/{located.inner_path}"
    return staged.path


# ----------------------------------------------------------------------------- mapping


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Which source columns hold the parcel id and the situs address.

    ``address_field`` is a full street line; when it is empty the line is
    composed from the parts (number, prefix, street, type, suffix).
    ``state`` is a fixed value for files without a state column (NC OneMap is
    one state by definition), needed because the household key falls back to
    city + state when a ZIP is missing.
    """

    apn_field: str
    address_field: str | None = None
    city_field: str | None = None
    zip_field: str | None = None
    state_field: str | None = None
    unit_field: str | None = None
    number_field: str | None = None
    prefix_field: str | None = None
    street_field: str | None = None
    type_field: str | None = None
    suffix_field: str | None = None
    state: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


_PARTS = {"number_field": "saddno", "prefix_field": "saddpref", "street_field": "saddstr",
          "type_field": "saddsttyp", "suffix_field": "saddstsuf", "unit_field": "sunit",
          "city_field": "scity", "zip_field": "szip"}
PRESETS: dict[str, dict[str, str]] = {
    "nc_onemap": {"apn_field": "parno", "address_field": "siteadd", **_PARTS, "state": "NC"},
    "regrid": {"apn_field": "parcelnumb", "address_field": "address", **_PARTS,
               "state_field": "state2"},
}
_MAPPING_KEYS = {f for f in FieldMapping.__dataclass_fields__}
_APN_HINTS = ("apn", "pin", "parcel", "parno", "parcelnumb", "parcel_id", "parcelid", "pid")
_ADDRESS_HINTS = ("addr", "situs", "site", "street", "location")


def resolve_mapping(
    fields: Sequence[str], explicit: dict[str, Any] | None,
) -> tuple[str | None, FieldMapping]:
    """The preset recognised in ``fields`` (case-insensitively), with any
    explicit mapping keys laid over it; without a preset the explicit mapping
    must name at least the APN and address columns.

    Overlaying lets a client fix one thing (``{"state": "NC"}``, or a
    different id column) without restating the whole preset.
    """
    by_lower = {f.lower(): f for f in fields}
    overrides = _explicit_columns(by_lower, explicit) if explicit else {}
    for name, preset in PRESETS.items():
        mapping = _apply_preset(by_lower, preset)
        if mapping is not None:
            return name, replace(mapping, **overrides)
    if overrides.get("apn_field") and (
        overrides.get("address_field") or overrides.get("street_field")
    ):
        return None, FieldMapping(**overrides)
    raise _unknown_fields(fields, explicit)


def _apply_preset(by_lower: dict[str, str], preset: dict[str, str]) -> FieldMapping | None:
    if preset["apn_field"] not in by_lower:
        return None
    has_line = preset["address_field"] in by_lower
    has_parts = {"saddno", "saddstr"} <= by_lower.keys()
    if not (has_line or has_parts):
        return None
    values: dict[str, str | None] = {}
    for key, column in preset.items():
        values[key] = column if key == "state" else by_lower.get(column)
    return FieldMapping(**values)  # type: ignore[arg-type]


def _explicit_columns(by_lower: dict[str, str], explicit: dict[str, Any]) -> dict[str, Any]:
    """Explicit mapping keys resolved to the file's own column spelling."""
    unknown_keys = sorted(set(explicit) - _MAPPING_KEYS - {"geometry_field"})
    if unknown_keys:
        raise JobValidationError(
            f"Unknown mapping keys {unknown_keys}; use {sorted(_MAPPING_KEYS | {'geometry_field'})}.",
            code="invalid_mapping", status=422)
    values: dict[str, str | None] = {}
    missing: list[str] = []
    for key, column in explicit.items():
        if column in (None, "") or key == "geometry_field":
            continue
        if key == "state":
            values[key] = str(column).strip().upper()
            continue
        actual = by_lower.get(str(column).strip().lower())
        if actual is None:
            missing.append(f"{key}={column!r}")
        values[key] = actual
    if missing:
        raise JobValidationError(
            f"The mapping names columns the file does not have: {', '.join(missing)}. "
            f"The file's columns are: {', '.join(by_lower.values())}.",
            code="mapping_field_missing", status=400,
            details={"missing": missing, "columns": list(by_lower.values())})
    return values


def _unknown_fields(fields: Sequence[str], explicit: dict[str, Any] | None) -> JobValidationError:
    apn = [f for f in fields if any(h in f.lower() for h in _APN_HINTS)]
    addr = [f for f in fields if any(h in f.lower() for h in _ADDRESS_HINTS)]
    sent = f"The mapping sent ({', '.join(sorted(explicit))}) is incomplete. " if explicit else ""
    return JobValidationError(
        f"{sent}The parcel columns were not recognised as NC OneMap (parno, siteadd, scity, szip) "
        "or Regrid (parcelnumb, address, scity, szip). Send a mapping with 'apn_field' and "
        "'address_field' (optional 'city_field', 'zip_field'). "
        f"Candidate id columns: {', '.join(apn) or 'none'}; "
        f"candidate address columns: {', '.join(addr) or 'none'}; "
        f"all columns: {', '.join(fields)}.",
        code="unknown_parcel_fields", status=400,
        details={"apn_candidates": apn, "address_candidates": addr, "columns": list(fields)})


# ----------------------------------------------------------------------------- situs


@dataclass(frozen=True, slots=True)
class Situs:
    """A parcel's site address as the file spells it, plus its household key."""

    address: str | None  # raw street line (with unit), for display
    key: str | None  # household_key, or None for a missing/placeholder address


_PLACEHOLDER = re.compile(
    r"^\s*(0+\s|$)|\b(DEFAULT|UNKNOWN|UNASSIGNED|NO\s+SITUS|NOT\s+ASSIGNED|NONE)\b",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")


def situs_of(attributes: dict[str, Any], mapping: FieldMapping) -> Situs:
    """Build the situs address and its key with the shared household key.

    Using :func:`household_key` (the same function voter import uses) is what
    makes address linking a plain equality join. Placeholder addresses such as
    ``0 DEFAULT STREET`` get no key, so they never attract households.
    """
    line = field_text(attributes, mapping.address_field)
    unit = field_text(attributes, mapping.unit_field)
    if not line:
        line = " ".join(p for p in (
            field_text(attributes, f) for f in (mapping.number_field, mapping.prefix_field,
                                            mapping.street_field, mapping.type_field,
                                            mapping.suffix_field)) if p)
    line = _SPACES.sub(" ", line).strip()
    if not line:
        return Situs(None, None)
    if unit and line.upper().split(" ")[-1] == unit.upper():
        unit = ""  # the line already ends with the unit
    display = f"{line} #{unit}" if unit else line
    if _PLACEHOLDER.search(line):
        return Situs(display, None)
    state = field_text(attributes, mapping.state_field) or mapping.state
    key = household_key(line, field_text(attributes, mapping.city_field) or None, state or None,
                        field_text(attributes, mapping.zip_field) or None, unit or None)
    return Situs(display, key)


def field_text(attributes: dict[str, Any], column: str | None) -> str:
    """A column's value as trimmed text ('' when absent); 12.0 reads as '12'."""
    if not column:
        return ""
    value = attributes.get(column)
    if type(value) is str:  # the common case first: this runs ~6 times per feature
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else (str(int(value)) if value.is_integer() else str(value))
    return str(value).strip()


# ----------------------------------------------------------------------------- CRS


def parse_crs(value: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except CRSError as exc:
        raise JobValidationError(
            f"source_crs {value!r} is not a coordinate reference system PROJ knows "
            "(use e.g. 'EPSG:2264' for NC State Plane feet).",
            code="invalid_source_crs", status=422) from exc


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
    raise JobValidationError(
        "The file has no coordinate reference system (no .prj or CRS) and its coordinates "
        f"(x {minx:.0f}..{maxx:.0f}, y {miny:.0f}..{maxy:.0f}) are not longitude/latitude. "
        "Send source_crs, e.g. 'EPSG:2264' for NC State Plane (US feet), or include the .prj.",
        code="missing_crs", status=422)


def wgs84_transformer(crs: str) -> Transformer | None:
    """None when the data is already WGS84 lon/lat (no work, no rounding)."""
    source = CRS.from_user_input(crs)
    if source.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return None
    return Transformer.from_crs(source, CRS.from_epsg(4326), always_xy=True)


# ----------------------------------------------------------------------------- inspection


@dataclass(slots=True)
class ParcelFileInfo:
    """What validation learnt about the file; stored in the job params so the
    worker reads exactly what was validated."""

    format: str
    container: str
    inner_path: str | None
    layer: str | None
    crs: str
    crs_origin: str  # file | param | assumed
    preset: str | None
    mapping: FieldMapping
    feature_count: int
    fields: list[str] = field(default_factory=list)
    geometry_field: str | None = None  # CSV only

    @property
    def located(self) -> Located:
        return Located(self.format, self.container, self.inner_path)

    def to_params(self) -> dict[str, Any]:
        data = asdict(self)
        data["mapping"] = self.mapping.to_dict()
        return data

    @classmethod
    def from_params(cls, data: dict[str, Any]) -> ParcelFileInfo:
        values = dict(data)
        values["mapping"] = FieldMapping(**values["mapping"])
        return cls(**values)


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
            info = _inspect_csv(staged, located, source_crs, mapping)
        else:
            info = _inspect_gdal(staged, located, source_crs, mapping, layer)
    if info.feature_count > max_items:
        raise JobValidationError(
            f"The file has {info.feature_count:,} features; a job may hold at most "
            f"{max_items:,}. Split the file (e.g. by county or area) and import the parts.",
            code="too_many_items", status=413,
            details={"features": info.feature_count, "limit": max_items})
    if info.feature_count == 0:
        raise JobValidationError("The file holds no features.", code="empty_file", status=422)
    return info


def _locate(data: bytes | IO[bytes], filename: str | None, limits: ZipLimits) -> Located:
    kind = sniff_format(_head(data), filename)
    if kind != "zip":
        return Located(kind, "plain")
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    try:
        with zipfile.ZipFile(stream) as zf:
            check_zip_safety(zf, limits)
            return locate_in_zip(zf)
    except zipfile.BadZipFile as exc:
        raise JobValidationError(f"The zip is damaged: {exc}.", code="bad_zip", status=422) from exc
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
            raise _no_features()
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
    crs, origin = choose_crs(meta.get("crs"), source_crs, _bounds(bounds))
    return ParcelFileInfo(
        format=located.format, container=located.container, inner_path=located.inner_path,
        layer=_stored_layer(located, chosen), crs=crs, crs_origin=origin, preset=preset,
        mapping=resolved, feature_count=int(meta["features"]), fields=fields)


def _stored_layer(located: Located, chosen: str | None) -> str | None:
    """The layer the worker must read. GeoJSON has exactly one, and GDAL
    names it after the staged file (which the worker stages anew under
    another temporary name) when the file has no top-level ``name``: so
    none is stored and the worker reads the only layer there is (also for
    jobs validated before, whose params still name the first staged copy)."""
    return None if located.format == "geojson" else chosen


def _too_many_fields(count: int) -> JobValidationError:
    """The same bound as a CSV header's (:data:`MAX_HEADER_COLUMNS`): a parcel
    layer has a few dozen to a few hundred attribute fields."""
    return JobValidationError(
        f"The layer has {count:,} attribute fields; at most {MAX_HEADER_COLUMNS:,} are "
        "accepted (parcel layers have a few dozen to a few hundred). Export only the parcel "
        "attributes.", code="too_many_columns", status=422,
        details={"columns": count, "limit": MAX_HEADER_COLUMNS})


def _no_features() -> JobValidationError:
    return JobValidationError("The file holds no features.", code="empty_file", status=422)


def _bounds(values: Any) -> tuple[float, float, float, float]:
    if values is None:
        return (math.nan, math.nan, math.nan, math.nan)
    minx, miny, maxx, maxy = (float(v) for v in values)
    return minx, miny, maxx, maxy


def _choose_layer(path: str, wanted: str | None, located: Located) -> str | None:
    """The one polygon layer; several need an explicit ``layer`` param."""
    try:
        layers = [(str(n), str(g)) for n, g in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as exc:
        raise _unopenable(located, exc) from exc
    names = [n for n, _ in layers]
    if wanted:
        if wanted not in names:
            raise JobValidationError(
                scrub_paths(f"Layer {wanted!r} is not in the file; its layers are {names}."),
                code="unknown_layer", status=422)
        return wanted
    polygonal = [n for n, g in layers if "polygon" in g.lower() or g.lower() in ("unknown", "none")]
    candidates = polygonal or names
    if len(candidates) > 1:
        raise JobValidationError(
            f"The file has several layers {candidates}; send 'layer' to pick one.",
            code="several_layers", status=422, details={"layers": candidates})
    if not candidates:
        raise JobValidationError("The file has no layers.", code="empty_file", status=422)
    return candidates[0]


def _unreadable(located: Located, exc: Exception) -> JobValidationError:
    return JobValidationError(
        f"The {located.format} file could not be read: {scrub_paths(str(exc))}",
        code="unreadable_file", status=422)


_NOT_RECOGNISED = "not recognized as being in a supported file format"


def _unopenable(located: Located, exc: Exception) -> JobValidationError:
    """GDAL could not open the staged upload at all."""
    text = str(exc)
    if _NOT_RECOGNISED in text and located.format == "geojson":
        return JobValidationError(
            "The file is JSON but not a GeoJSON FeatureCollection: expected "
            '{"type": "FeatureCollection", "features": [...]} with polygon features.',
            code="not_geojson", status=422)
    if _NOT_RECOGNISED in text:
        return JobValidationError(
            f"The {located.format} file is not in a format that can be read; check that it "
            "is not damaged or truncated.", code="unreadable_file", status=422)
    return JobValidationError(f"The file could not be opened: {scrub_paths(text)}",
                              code="unreadable_file", status=422)


# A staged upload's path (or a GDAL path into it), and GDAL's advice to name a driver.
_STAGED_PATH = re.compile(
    r"(?:/vsizip/)?\{?[^\s'\"{}]*cocoa-parcels-[^\s'\"{}/]*\}?(?:/[^\s'\":]*)?")
_DRIVER_HINT = re.compile(r";?\s*It might help to specify the correct driver.*", re.DOTALL)


def scrub_paths(message: str) -> str:
    """A GDAL message fit for the client: server paths of staged uploads
    become "the uploaded file" and the advice to prefix a driver is dropped."""
    return _DRIVER_HINT.sub("", _STAGED_PATH.sub("the uploaded file", message)).strip()


# ----------------------------------------------------------------------------- CSV

_GEOMETRY_COLUMNS = ("wkt", "geometry", "geom", "the_geom", "wkt_geom", "shape", "geojson")
_CSV_SAMPLE = 1000
_SAMPLE_TEXT_CHARS = 1024 * 1024
"""Geometry texts longer than this are counted but left out of the sample
that guesses the CRS: a parcel's WKT is at most a few hundred KB, and
parsing a sample of giant ones would make validation cost what they cost."""


def _csv_rows(path: str) -> Iterator[list[str]]:
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


def _inspect_csv(
    staged: StagedFile, located: Located, source_crs: str | None,
    mapping: dict[str, Any] | None,
) -> ParcelFileInfo:
    _check_csv_header(staged.path)
    rows = _csv_rows(staged.path)
    header = next(rows, None)
    if not header:
        raise JobValidationError("The CSV is empty.", code="empty_file", status=422)
    if len(header) > MAX_HEADER_COLUMNS:
        raise too_many_columns(len(header), "comma")
    geometry_index = _geometry_column(header, mapping)
    fields = [h for i, h in enumerate(header) if i != geometry_index]
    count, sample = _csv_sample(rows, geometry_index)
    if count == 0:
        raise _no_features()
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
        return _bounds(None)
    return _bounds(shapely.total_bounds(geoms))


def _geometry_column(header: Sequence[str], mapping: dict[str, Any] | None) -> int:
    lowered = [h.strip().lower() for h in header]
    wanted = (mapping or {}).get("geometry_field")
    names = [str(wanted).lower()] if wanted else list(_GEOMETRY_COLUMNS)
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise JobValidationError(
        "The CSV has no geometry column: name it WKT (or geometry/geom/the_geom) holding WKT "
        "or GeoJSON, or send mapping 'geometry_field'. "
        f"Columns: {', '.join(header)}.",
        code="csv_no_geometry", status=400, details={"columns": list(header)})


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


# ----------------------------------------------------------------------------- reading


@dataclass(slots=True)
class FeatureSlice:
    """Features ``start .. start+len-1`` of the file: geometry as shapely
    objects in the file's CRS (None when missing/unparsable) and every
    attribute as JSON-ready values, kept column-wise (one list per field) so a
    read-ahead window costs no per-feature dicts until a batch asks."""

    start: int
    geometries: np.ndarray
    names: list[str]
    columns: list[list[Any]]
    unparsed: dict[int, str] = field(default_factory=dict)  # relative index -> why

    def __len__(self) -> int:
        return len(self.geometries)

    @property
    def attributes(self) -> list[dict[str, Any]]:
        if not self.names:
            return [{} for _ in range(len(self))]
        return [dict(zip(self.names, row, strict=True)) for row in zip(*self.columns, strict=True)]

    def part(self, offset: int, count: int) -> FeatureSlice:
        """Features ``offset .. offset+count-1`` of this slice (relative)."""
        end = offset + count
        unparsed = {i - offset: why for i, why in self.unparsed.items() if offset <= i < end}
        return FeatureSlice(self.start + offset, self.geometries[offset:end], self.names,
                            [c[offset:end] for c in self.columns], unparsed)


# Formats GDAL can seek in (an index or SQL offset); GeoJSON and CSV are
# re-scanned from the top on every open.
RANDOM_ACCESS_FORMATS = frozenset({"shapefile", "gpkg", "filegdb"})


def read_slice(staged: StagedFile, info: ParcelFileInfo, start: int, count: int) -> FeatureSlice:
    """Read features ``[start, start + count)``; fewer at the end of the file."""
    if info.format == "csv":
        return _read_csv_slice(staged.path, info, start, count)
    path = gdal_path(staged, info.located)
    meta, _fids, geometry, columns = pyogrio.raw.read(
        path, layer=_stored_layer(info.located, info.layer), skip_features=start, max_features=count,
        datetime_as_string=True)
    names = [str(n) for n in meta["fields"]]
    values = [_json_column(col) for col in columns]
    n = len(geometry) if geometry is not None else (len(values[0]) if values else 0)
    geoms = shapely.from_wkb(geometry, on_invalid="ignore") if geometry is not None \
        else np.full(n, None, dtype=object)
    return FeatureSlice(start, np.asarray(geoms, dtype=object), names, values)


def _json_column(column: np.ndarray) -> list[Any]:
    """A numpy column as plain Python values; NaN and NaT become None."""
    values: list[Any] = column.tolist()
    if column.dtype.kind == "f":
        return [None if v is not None and math.isnan(v) else v for v in values]
    if column.dtype.kind in "mM":
        return [None if v is None else str(v) for v in values]
    if column.dtype.kind != "O":
        return values
    texts = [v for v in values if v is not None]
    if all(type(v) is str for v in texts) and "\x00" not in "".join(texts):
        return values  # the common case, checked at C speed
    return [_json_value(v) for v in values]


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")  # JSONB refuses NUL characters
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_csv_slice(path: str, info: ParcelFileInfo, start: int, count: int) -> FeatureSlice:
    rows = _csv_rows(path)
    header = next(rows)
    lowered = [h.strip().lower() for h in header]
    geometry_index = lowered.index((info.geometry_field or "").strip().lower())
    keep = [i for i in range(len(header)) if i != geometry_index]
    data_rows = (r for r in rows if any(r))
    texts: list[str | None] = []
    records: list[list[Any]] = []
    width = len(header)
    for row in islice(data_rows, start, start + count):
        padded = row + [""] * (width - len(row)) if len(row) < width else row
        texts.append(padded[geometry_index])
        records.append([padded[i] or None for i in keep])
    columns = [list(c) for c in zip(*records, strict=True)] if records else [[] for _ in keep]
    geometries, unparsed = parse_text_geometries_checked(texts)
    return FeatureSlice(start, geometries, [header[i] for i in keep], columns, unparsed)


# ----------------------------------------------------------------------------- geometry


@dataclass(slots=True)
class PreparedGeometries:
    """Per-feature outcome of reprojection and repair.

    ``problems[i]`` is None for a usable feature, else (code, message).
    """

    geometries: np.ndarray  # WGS84 polygonal geometries (None where a problem)
    repaired: np.ndarray  # bool: make_valid was needed
    problems: list[tuple[str, str] | None]


_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


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


def feature_ref(index: int) -> str:
    """1-based, as a person counts features in a GIS table."""
    return f"feature {index + 1}"


__all__ = [
    "DEFAULT_ZIP_LIMITS", "FORMATS", "FeatureSlice", "FieldMapping", "PRESETS",
    "ParcelFileInfo", "PreparedGeometries", "Situs", "StagedFile", "ZipLimits",
    "check_zip_safety", "choose_crs", "feature_ref", "field_text", "gdal_path", "inspect_parcel_file",
    "locate_in_zip", "parse_text_geometries", "parse_text_geometries_checked",
    "prepare_geometries", "read_slice", "resolve_mapping", "scrub_paths", "situs_of",
    "sniff_format", "stage_upload", "wgs84_transformer",
]
