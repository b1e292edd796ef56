"""Refusing zips that are bombs or try to escape with their paths.

Shared by every upload that may be a zip: parcel datasets
(:mod:`cocoa.domain.parcel_files`) and compressed voter files
(:mod:`cocoa.domain.compressed`), so both refuse the same archives the same way.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass

from cocoa.domain.errors import InputError, Problem


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Bounds that keep a hostile zip from exhausting memory or disk.

    Honest parcel zips hold a handful of files (a File Geodatabase a few
    dozen) and compress 3-30:1, voter files (text) 5-15:1; dBase files full of padding can reach ~100:1,
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

    Nothing is ever extracted to disk, but GDAL follows the directory (and
    a voter upload names its member), so a
    ``..`` or absolute name is refused outright rather than trusted.
    """
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _too_large(
            f"The zip has {len(infos)} entries; at most {limits.max_entries} are accepted. "
            "Zip only the data file(s) themselves.", code="zip_too_many_entries")
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
        raise InputError(
            f"The zip entry {name!r} has an absolute or '..' path and is refused. "
            "Re-create the zip from inside the dataset's folder.",
            code="zip_unsafe_path", problem=Problem.UNPROCESSABLE)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InputError(
            f"The zip entry {name!r} is a symbolic link; links are refused.",
            code="zip_unsafe_path", problem=Problem.UNPROCESSABLE)
    if info.flag_bits & 0x1:
        raise InputError(
            f"The zip entry {name!r} is encrypted; upload an unencrypted zip.",
            code="zip_encrypted", problem=Problem.UNPROCESSABLE)


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


def _too_large(message: str, *, code: str) -> InputError:
    return InputError(message, code=code, problem=Problem.TOO_LARGE)
