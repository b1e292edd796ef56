"""Compressed uploads (``.zip`` with one data file, ``.gz``) read as streams.

State offices publish voter files zipped (``ncvoter_Statewide.zip``) or
gzipped. The upload is never unpacked onto disk or whole into memory: the
archive is opened where it lies (the client's spooled upload) and the data
file is read through a seekable, bounded stream that decompresses as it is
read - once to validate it, once more to copy it into the stored blob.

Safety is the same as for parcel zips (:mod:`cocoa.domain.zip_safety`):
bombs by ratio and size, ``..``/absolute names, symbolic links, encrypted
members; on top of that a member that is itself an archive (a nested zip)
is refused, and the expanded size is bounded by a limit the caller passes
(``COCOA_MAX_DECOMPRESSED_BYTES``). A member name from the client is only
compared with the names in the directory, never used as a path.
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TypeVar

from cocoa.domain.errors import InputError, Problem
from cocoa.domain.zip_safety import DEFAULT_ZIP_LIMITS, ZipLimits, check_zip_safety

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
GZIP_MAGIC = b"\x1f\x8b"
_IGNORED_PREFIXES = ("__MACOSX/",)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Unpacked:
    """The data file of an upload: ``stream`` is seekable and bounded."""

    stream: IO[bytes]
    compression: str | None  # "zip", "gzip", or None for a plain file
    member: str | None  # the zip member read


def sniff_compression(stream: IO[bytes]) -> str | None:
    """"zip" or "gzip" from the first bytes (the name is only a hint); the
    stream is left at its start."""
    stream.seek(0)
    head = stream.read(MAGIC_BYTES)
    stream.seek(0)
    return compression_of(head)


MAGIC_BYTES = 4  # enough of a file's start for compression_of


def compression_of(head: bytes) -> str | None:
    """"zip" or "gzip" from a file's first :data:`MAGIC_BYTES` bytes, else None."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    return None


def unpack(
    stream: IO[bytes], *, member: str | None, max_bytes: int,
    limits: ZipLimits = DEFAULT_ZIP_LIMITS,
) -> Unpacked:
    """The data file inside ``stream`` (or ``stream`` itself when it is not
    compressed). Raises :class:`InputError` saying what to fix."""
    kind = sniff_compression(stream)
    if kind is None:
        if member:
            raise InputError(
                f"'member' ({member!r}) names a file inside a zip, but the upload is not a zip. "
                "Leave 'member' out, or upload the zip.",
                code="member_without_zip", problem=Problem.UNPROCESSABLE)  # 422: see docs/api.md
        return Unpacked(stream, None, None)
    if kind == "gzip":
        if member:
            raise InputError(
                "'member' applies to .zip uploads; a .gz file holds one file. Leave 'member' out.",
                code="member_without_zip", problem=Problem.UNPROCESSABLE)  # 422: see docs/api.md
        opened: IO[bytes] = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        return _unpacked(opened, stream, "gzip", None, max_bytes, limits)
    return _unzip(stream, member, max_bytes, limits)


def _unzip(stream: IO[bytes], member: str | None, max_bytes: int, limits: ZipLimits) -> Unpacked:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(f"The zip is damaged: {exc}. Re-create it and upload it again.",
                         code="bad_zip", problem=Problem.UNPROCESSABLE) from exc
    check_zip_safety(archive, limits)
    info = _choose_member(data_members(archive), member)
    if info.file_size > max_bytes:
        raise _too_large(max_bytes, f"its member {info.filename!r} expands to {info.file_size:,} bytes")
    try:
        opened = archive.open(info)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        raise InputError(f"The zip member {info.filename!r} cannot be read: {exc}.",
                         code="bad_zip", problem=Problem.UNPROCESSABLE) from exc
    return _unpacked(opened, stream, "zip", info.filename, max_bytes, limits)


def data_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The files a person put in the zip: no directories, no macOS resource forks."""
    return [info for info in archive.infolist()
            if not info.is_dir() and not info.filename.startswith(_IGNORED_PREFIXES)
            and not info.filename.rsplit("/", 1)[-1].startswith("._")]


def _choose_member(infos: list[zipfile.ZipInfo], member: str | None) -> zipfile.ZipInfo:
    names = [info.filename for info in infos]
    if not infos:
        raise InputError("The zip is empty: it holds no file. Zip the voter file and upload it again.",
                         code="zip_empty", problem=Problem.UNPROCESSABLE)
    if member:
        for info in infos:  # the exact name, else a unique match on the last path component
            if info.filename == member:
                return info
        by_base = [info for info in infos if info.filename.rsplit("/", 1)[-1] == member]
        if len(by_base) == 1:
            return by_base[0]
        raise InputError(
            f"The zip has no member {member!r}; its files are: {_listing(names)}.",
            code="zip_member_not_found", problem=Problem.UNPROCESSABLE,
            details={"member": member, "members": names[:100]})
    if len(infos) > 1:
        raise InputError(
            f"The zip holds {len(infos)} files: {_listing(names)}. Name the one to import with "
            "the 'member' field (e.g. member=" + repr(names[0]) + "), or zip only that file.",
            code="zip_several_members", problem=Problem.UNPROCESSABLE,
            details={"members": names[:100]})
    return infos[0]


def _listing(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _unpacked(
    opened: IO[bytes], source: IO[bytes], kind: str, member: str | None, max_bytes: int,
    limits: ZipLimits,
) -> Unpacked:
    raw = BoundedDecompression(opened, source, max_bytes=max_bytes, limits=limits,
                               watch_ratio=kind == "gzip")
    stream = io.BufferedReader(raw, buffer_size=256 * 1024)
    head = stream.peek(4)[:4]
    if head.startswith(ZIP_MAGIC) or head.startswith(GZIP_MAGIC):
        inner = member or "the .gz file"
        raise InputError(
            f"{inner!s} is itself a compressed archive; nested archives are refused. "
            "Upload the inner archive instead.",
            code="nested_archive", problem=Problem.UNPROCESSABLE)
    return Unpacked(stream, kind, member)


class BoundedDecompression(io.RawIOBase):
    """A decompressing stream that refuses to expand past ``max_bytes`` or
    at a bomb's ratio, and turns a corrupt archive into an :class:`InputError`
    (raised from whichever read meets it)."""

    def __init__(self, opened: IO[bytes], source: IO[bytes], *, max_bytes: int,
                 limits: ZipLimits, watch_ratio: bool) -> None:
        super().__init__()
        self._watch_ratio = watch_ratio
        self._opened = opened
        self._source = source
        self._max = max_bytes
        self._limits = limits
        self._start = source.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._opened.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._guarded(lambda: self._opened.seek(offset, whence))

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._guarded(lambda: self._opened.read(len(buffer)))
        buffer[: len(data)] = data
        position = self._opened.tell()
        if position > self._max:
            raise _too_large(self._max, f"it expands past {self._max:,} bytes")
        self._check_ratio(position)
        return len(data)

    def _check_ratio(self, expanded: int) -> None:
        """A gzip declares no size: its ratio is watched as it expands (a
        zip member's declared sizes were checked up front, and ``zipfile``
        stops at the declared size)."""
        if not self._watch_ratio or expanded < self._limits.ratio_min_bytes:
            return
        consumed = max(self._source.tell() - self._start, 1)
        if expanded / consumed > self._limits.max_ratio:
            raise InputError(
                f"The upload expands more than {self._limits.max_ratio:.0f}:1 ({expanded:,} bytes "
                f"from {consumed:,}); that looks like a compression bomb and is refused.",
                code="zip_bomb", problem=Problem.TOO_LARGE)

    def _guarded(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise InputError(f"The compressed file is damaged: {exc}. Upload it again.",
                             code="bad_compressed_file", problem=Problem.UNPROCESSABLE) from exc

    def close(self) -> None:
        try:
            self._opened.close()
        finally:
            super().close()


def _too_large(limit: int, what: str) -> InputError:
    return InputError(
        f"The compressed upload is too large once expanded: {what}; the limit is {limit:,} bytes "
        "(COCOA_MAX_DECOMPRESSED_BYTES). Split the file or ask the administrator to raise the limit.",
        code="decompressed_too_large", problem=Problem.TOO_LARGE, details={"limit": limit})
