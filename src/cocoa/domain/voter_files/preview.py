"""What an import of a voter file would do, before it starts (issue 17).

The preview reads the header and the first rows exactly as the import will
(same layout detection, same column binding, same row reader), so the user
sees the layout and why, which column feeds each field, the first rows as
they would be stored (name, address, household) and the problems in the
first rows, and can fix the mapping before any job exists. Nothing is
stored. Its cost is bounded: the first :data:`CHECKED_ROWS` rows are parsed,
and the rows of a file larger than :data:`EXACT_COUNT_BYTES` are estimated
from the first rows rather than counted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any

from cocoa.domain.addresses import building_household_key
from cocoa.domain.errors import InputError, Problem
from cocoa.domain.voter_files.header import Detection
from cocoa.domain.voter_files.inspection import check_raw_text, read_header_line, resolve_layout
from cocoa.domain.voter_files.issues import RowIssue
from cocoa.domain.voter_files.lines import (
    count_data_lines_upto,
    count_records_upto,
    is_blank,
    iter_records,
)
from cocoa.domain.voter_files.records import VoterRecord
from cocoa.domain.voter_files.row_reader import RowReader

SHOWN_ROWS = 20
CHECKED_ROWS = 500
MAX_PROBLEMS = 50
EXACT_COUNT_BYTES = 32 * 1024 * 1024
_DELIMITERS = {",": "comma", ";": "semicolon", "|": "pipe", "\t": "tab"}


def preview_file(stream: IO[bytes], format: str,
                 mapping: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """The preview of ``stream`` (seekable) as a JSON-able dict; a file the
    import would refuse up front raises the same :class:`InputError`."""
    stream.seek(0)
    check_raw_text(stream.read(512))
    header_line = read_header_line(stream)
    if header_line is None:
        raise InputError("The file is empty: expected a header row and data rows.",
                         code="empty_file", problem=Problem.UNPROCESSABLE)
    detection = resolve_layout(header_line, format, mapping)
    reader = RowReader(detection.layout, detection.header)
    sample, problems, checked, checked_bytes = _first_rows(stream, header_line.end,
                                                           header_line.number + 1, reader)
    rows, exact = _row_count(stream, header_line.end, detection, checked, checked_bytes)
    if rows == 0:
        raise InputError("The file has a header but no data rows.",
                         code="no_data_rows", problem=Problem.UNPROCESSABLE)
    return {
        "layout": detection.layout.name, "requested_format": format, "reason": detection.reason,
        "delimiter": _DELIMITERS.get(detection.layout.delimiter, detection.layout.delimiter),
        "columns": list(detection.header.names), "mapping": dict(detection.columns_used),
        "identity": _identity(detection),
        "rows": rows, "rows_exact": exact,
        "rows_note": ("counted" if exact else
                      f"estimated from the first {checked} rows (the file is large; the import "
                      "counts them exactly)"),
        "checked_rows": checked, "sample": sample, "problems": problems,
    }


def _identity(detection: Detection) -> str:
    used = detection.columns_used
    if detection.layout.id_column:
        return f"voter id column {detection.layout.id_column!r}"
    born = next((used[f] for f in ("birth_date", "birth_year") if f in used), None)
    return "name + address" + (f" + date of birth ({born!r})" if born else
                               " (the file has no id or date of birth column: people with one "
                               "name at one address are one voter)")


def _first_rows(stream: IO[bytes], offset: int, row: int, reader: RowReader,
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """(the first rows as stored, the problems of the first checked rows,
    how many rows were checked, how many bytes they took)."""
    sample: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    keys: dict[str, int] = {}
    checked, end = 0, offset
    for line in iter_records(stream, offset, row, reader.layout):
        if checked >= CHECKED_ROWS:
            break
        end = line.end
        if is_blank(line.raw, reader.layout):
            continue
        checked += 1
        item = reader.parse(line)
        issues = [item] if isinstance(item, RowIssue) else item.warnings
        problems.extend(_problem(issue) for issue in issues if len(problems) < MAX_PROBLEMS)
        if isinstance(item, VoterRecord):
            earlier = keys.setdefault(item.external_id, item.row)
            if earlier != item.row and len(problems) < MAX_PROBLEMS:
                problems.append(_same_key(item.row, earlier, reader.layout.id_column))
        if len(sample) < SHOWN_ROWS:
            sample.append(_shown(item))
    return sample, problems, checked, end - offset


def _problem(issue: RowIssue) -> dict[str, Any]:
    return {"row": issue.row, "code": issue.code, "message": issue.message,
            "severity": "error" if issue.fatal else "warning"}


def _same_key(row: int, earlier: int, id_column: str | None) -> dict[str, Any]:
    if id_column:
        message = (f"row {row}: same {id_column!r} as row {earlier}; the later row wins "
                   "(one voter updated)")
    else:
        message = (f"row {row}: same name, address and birth date (where given) as row "
                   f"{earlier}, so both would be one voter; if they are different people, "
                   "map a voter id column or a date of birth column")
    return {"row": row, "code": "same_voter_key", "message": message, "severity": "warning"}


def _shown(item: VoterRecord | RowIssue) -> dict[str, Any]:
    """One row as the import would store it (or why it would not)."""
    if isinstance(item, RowIssue):
        return {"row": item.row, "stored": False, "error": item.code, "message": item.message}
    fields, home = item.fields, item.household
    name = " ".join(str(fields[f]) for f in ("first_name", "middle_name", "last_name",
                                              "name_suffix") if fields.get(f))
    born = fields.get("birth_date") or fields.get("birth_year")
    return {
        "row": item.row, "stored": True, "voter_id": item.external_id, "name": name,
        "birth": str(born) if born else None,
        "address": home.street_line if home else None, "unit": home.unit if home else None,
        "city": home.city if home else None, "state": home.state if home else None,
        "zip": home.zip_code if home else None,
        "household_key": home.key if home else None,
        "building_key": building_household_key(home.key) if home else None,
        "warnings": [w.message for w in item.warnings],
    }


def _row_count(stream: IO[bytes], offset: int, detection: Detection, checked: int,
               checked_bytes: int) -> tuple[int, bool]:
    """(rows, exact): counted when the file is small enough to count at
    once, else estimated from the bytes per row of the rows checked."""
    size = stream.seek(0, os.SEEK_END)
    if size <= EXACT_COUNT_BYTES or checked == 0:
        count = count_records_upto if detection.layout.multiline else count_data_lines_upto
        return count(stream, offset, detection.layout, None)[0], True
    return max(checked, round((size - offset) * checked / max(checked_bytes, 1))), False
