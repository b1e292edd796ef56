"""Deciding the format from the bytes, and finding the dataset inside a zip.

The client's file name is only a hint for error messages: GDAL picks a
driver by content, so the content is what is checked.
"""

from __future__ import annotations

import codecs
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from cocoa.domain.errors import InputError, Problem

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


def head_of(data: bytes | IO[bytes], size: int = 4096) -> bytes:
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
        raise InputError(
            "The file is an SQLite database but not a GeoPackage.",
            code="unsupported_format", problem=Problem.UNSUPPORTED)
    if head.startswith(_SHP_MAGIC) or hint.endswith((".shp", ".dbf", ".shx")):
        raise InputError(
            "A shapefile is several files: zip the .shp, .shx, .dbf and .prj "
            "(and .cpg if present) together and upload the zip.",
            code="shapefile_not_zipped", problem=Problem.UNSUPPORTED)
    text = _decode_head(head)
    if text is None:
        raise InputError(
            f"Unrecognised file{f' {filename!r}' if filename else ''}: expected GeoJSON, "
            "a zipped shapefile, a GeoPackage, a zipped File Geodatabase (.gdb folder) "
            "or a CSV with a WKT or GeoJSON geometry column.",
            code="unsupported_format", problem=Problem.UNSUPPORTED)
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
        raise InputError(
            f"The zip holds several datasets ({found}); upload one per job.",
            code="zip_ambiguous", problem=Problem.UNPROCESSABLE, details={"datasets": [*gdbs, *shps, *others]})
    if gdbs:
        return Located("filegdb", "zip", gdbs[0])
    if shps:
        _require_shapefile_parts(shps[0], names)
        return _checked_member(zf, Located("shapefile", "zip", shps[0]))
    if others:
        fmt = _INNER_SUFFIXES[os.path.splitext(others[0].lower())[1]]
        return _checked_member(zf, Located(fmt, "zip", others[0]))
    raise InputError(
        "The zip holds no parcel dataset: expected a .shp (with .shx, .dbf, .prj), "
        "a .gdb folder, or a .geojson/.gpkg/.csv file.",
        code="zip_no_dataset", problem=Problem.UNPROCESSABLE)


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
        except InputError:
            ok = False
    if not ok:
        raise InputError(
            f"The zip member {located.inner_path!r} is not the {located.format} file its "
            "name says it is.", code="unsupported_format", problem=Problem.UNSUPPORTED)
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
        raise InputError(
            f"The shapefile {shp!r} is missing {', '.join(missing)}; zip all of its files.",
            code="shapefile_incomplete", problem=Problem.UNPROCESSABLE)
