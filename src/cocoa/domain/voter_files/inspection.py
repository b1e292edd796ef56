"""Validating an upload before a job exists: layout, header and row count.

A bad file is refused here with a clear 4xx saying what to fix, instead of
failing halfway through an import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import IO

from cocoa.domain.errors import InputError, Problem
from cocoa.domain.voter_files.header import (
    Detection,
    decode_header,
    detect_layout,
    missing_required,
    parse_header,
    with_sniffed_delimiter,
)
from cocoa.domain.voter_files.layouts import SIMPLE_CSV, Layout, get_layout
from cocoa.domain.voter_files.limits import MAX_HEADER_BYTES, header_too_long
from cocoa.domain.voter_files.lines import Line, count_data_lines_upto, count_records_upto, iter_lines
from cocoa.domain.voter_files.mapping import bind_columns, official_columns

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_header_line(stream: IO[bytes]) -> Line | None:
    """The first non-blank line (the header); None for an empty file.

    Bounded work whatever the file: at most :data:`MAX_HEADER_BYTES` of the
    first line are kept (a longer one is refused, 422, saying how long it
    is), and blank lines are skipped only within the first
    :data:`MAX_HEADER_BYTES` of the file.
    """
    for line in iter_lines(stream, 0, 1, max_line=MAX_HEADER_BYTES):
        if len(line.raw) > MAX_HEADER_BYTES:
            ending = _line_ending_bytes(stream, line)
            raise header_too_long(line.end - line.start - ending, ending > 0)
        if line.raw.strip():
            return line
        if line.end > MAX_HEADER_BYTES:
            raise InputError(
                f"The first {MAX_HEADER_BYTES:,} bytes of the file are blank lines; the "
                "header row must come first. Remove the blank lines at the top.",
                code="no_header", problem=Problem.UNPROCESSABLE)
    return None


def _line_ending_bytes(stream: IO[bytes], line: Line) -> int:
    """How many of the bytes just before ``line.end`` are its line ending (0-2)."""
    stream.seek(max(line.start, line.end - 2))
    tail = stream.read(line.end - stream.tell())
    return 2 if tail.endswith(b"\r\n") else 1 if tail.endswith((b"\n", b"\r")) else 0


def resolve_layout(header_line: Line, requested: str,
                   mapping: Mapping[str, str | None] | None = None) -> Detection:
    """The layout for ``requested`` (a layout name or ``auto``) bound to this
    file's header, and why; raises a 422 naming the missing columns.

    A ``mapping`` (our field -> their column) means the simple layout, whose
    columns are chosen per file; the official layouts have fixed columns.
    """
    text = decode_header(header_line.raw)
    if mapping and requested not in ("auto", SIMPLE_CSV.name):
        get_layout(requested)  # an unknown name is refused as such first
        raise InputError(
            f"A mapping applies to hand-made and vendor files (format 'simple_csv' or 'auto'); "
            f"the {requested} layout has fixed columns. Drop the mapping or use format=auto.",
            code="mapping_not_supported", problem=Problem.UNPROCESSABLE,
            details={"format": requested})
    if mapping:
        detection = _as_requested(text, SIMPLE_CSV, "simple_csv: a mapping was given", check=False)
    elif requested == "auto":
        detection = detect_layout(text)
    else:
        detection = _as_requested(text, get_layout(requested), f"{requested} as requested")
    return _bind(detection, mapping)


def _as_requested(text: str, layout: Layout, reason: str, check: bool = True) -> Detection:
    """The requested layout on this header; without a mapping (``check``) its
    required columns must be there (under any alias, for the simple layout)."""
    layout = with_sniffed_delimiter(layout, text)
    header = parse_header(text, layout)
    missing = missing_required(header, layout) if check else []
    if missing:
        raise InputError(
            f"The file is missing required {layout.name} column(s): {', '.join(missing)}. "
            f"Required: {', '.join(layout.required)}.",
            code="missing_columns", problem=Problem.UNPROCESSABLE,
            details={"format": layout.name, "missing": missing,
                     "required": list(layout.required)},
        )
    return Detection(layout, header, reason)


def _bind(detection: Detection, mapping: Mapping[str, str | None] | None) -> Detection:
    """The detection with its columns chosen (see :mod:`.mapping`) and the
    reason saying which, so the user sees why a column was or was not used."""
    layout, header = detection.layout, detection.header
    if not layout.bind:
        return replace(detection, columns_used=official_columns(layout, header))
    bound, used = bind_columns(layout, header, mapping)
    delimiter = {",": "comma", ";": "semicolon", "|": "pipe", "\t": "tab"}[layout.delimiter]
    identity = (f"voters identified by the id column {used['voter_id']!r}" if "voter_id" in used
                else "no id column: voters identified by name + address"
                + (" + date of birth" if {"birth_date", "birth_year"} & set(used) else ""))
    reason = (f"{detection.reason}; {delimiter}-delimited; {identity}; street from "
              f"{used['street']!r}" + (f", unit from {used['unit']!r}" if "unit" in used else ""))
    return Detection(bound, header, reason, used)


@dataclass(frozen=True, slots=True)
class FileInspection:
    """What validation learned about an upload."""

    layout: Layout
    requested: str
    reason: str
    columns: tuple[str, ...]
    data_offset: int  # byte offset of the first line after the header
    first_row: int  # its row number
    rows: int  # non-blank data lines (records, for a layout with multi-line records)
    columns_used: Mapping[str, str] = field(default_factory=dict)


def inspect_file(stream: IO[bytes], format: str, max_items: int,
                 mapping: Mapping[str, str | None] | None = None) -> FileInspection:
    """Pre-flight check at validation time, so a bad file is refused with a
    clear 4xx before a job exists instead of failing halfway."""
    if format != "auto":
        get_layout(format)
    stream.seek(0)
    _check_raw_text(stream.read(_SNIFF_BYTES))
    header_line = read_header_line(stream)
    if header_line is None:
        raise InputError("The file is empty: expected a header row and data rows.",
                                 code="empty_file", problem=Problem.UNPROCESSABLE)
    detection = resolve_layout(header_line, format, mapping)
    count = count_records_upto if detection.layout.multiline else count_data_lines_upto
    rows, complete = count(stream, header_line.end, detection.layout, max_items)
    if rows == 0:
        raise InputError("The file has a header but no data rows.",
                                 code="no_data_rows", problem=Problem.UNPROCESSABLE)
    if rows > max_items:
        counted = f"{rows}" if complete else f"more than {max_items}"
        raise InputError(
            f"The file has {counted} data rows; at most {max_items} are allowed in one upload "
            "(COCOA_MAX_ITEMS_PER_GROUP). Split the file and import the parts one after another, "
            "or ask the administrator to raise the limit.",
            code="too_many_items", problem=Problem.UNPROCESSABLE,
            details={"rows": rows if complete else None, "limit": max_items},
        )
    return FileInspection(detection.layout, format, detection.reason, detection.header.names,
                          header_line.end, header_line.number + 1, rows, detection.columns_used)


_SNIFF_BYTES = 512
_COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"PK\x05\x06": "zip",
                     b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"7z\xbc\xaf\x27\x1c": "7z"}


def _check_raw_text(start: bytes) -> None:
    """Refuse, with what to do, files that are not plain 8-bit text: UTF-16
    (with or without a BOM) and compressed archives."""
    for magic, kind in _COMPRESSED_MAGIC.items():
        if start.startswith(magic):
            raise InputError(
                f"The file is compressed ({kind}); extract the .txt/.csv voter file from it "
                "and upload that.", code="compressed_file", problem=Problem.UNPROCESSABLE,
                details={"compression": kind})
    if start[:2] in _UTF16_BOMS or _looks_utf16(start):
        raise InputError("The file is UTF-16 encoded; save it as UTF-8 or Latin-1 CSV.",
                                 code="unsupported_encoding", problem=Problem.UNPROCESSABLE)


def _looks_utf16(start: bytes) -> bool:
    """UTF-16 without a BOM: text in it is mostly ASCII, so every other byte
    (the odd ones for little-endian, the even ones for big-endian) is NUL."""
    if len(start) < 8:
        return False
    even, odd = start[0::2], start[1::2]
    return (odd.count(0) >= 0.9 * len(odd) > even.count(0)
            or even.count(0) >= 0.9 * len(even) > odd.count(0))


check_raw_text = _check_raw_text  # for the preview, which refuses what the import refuses
