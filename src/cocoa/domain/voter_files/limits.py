"""Bounds on what is read from an upload at request time, and their refusals.

Everything read while validating (the header, the line count) is bounded by
these and by the upload size limit, so validating a file costs at most one
pass over its bytes at C speed, however it is built. None is a setting: no
real file comes near them, so there is nothing to tune.
"""

from __future__ import annotations

from cocoa.domain.errors import InputError, Problem

MAX_HEADER_BYTES = 64 * 1024
"""A header row longer than this is refused (422). A statewide layout's
header is 1-2 KB (70-100 names), a vendor's with every election column a
few KB; 64 KiB of names is not a voter file, and a first line that long is
almost always a file with no line breaks (or the wrong ones)."""

MAX_HEADER_COLUMNS = 2_000
"""A header with more columns than this is refused (422). Statewide layouts
have 70-100 columns, vendor files rarely above 500."""

MAX_LINE_BYTES = 8 * 1024 * 1024
"""A data line longer than this is an item error (``line_too_long``) and only
its first ``MAX_LINE_BYTES`` are ever held in memory: one huge line in the
middle of a file costs a row, not the worker's memory. A voter row is a few
hundred bytes; the bad-input corpus imports a row with a 5 MB field, which
stays accepted."""

def header_too_long(length: int, line_break: bool) -> InputError:
    """The 422 for a first line over :data:`MAX_HEADER_BYTES` (voter and parcel CSV files)."""
    if line_break:
        message = (f"The first line (the header row) is {length:,} bytes long; a header row "
                   f"is at most {MAX_HEADER_BYTES:,} bytes (a few hundred column names). "
                   "Check that the file is a CSV/TSV whose first line is its header.")
    else:
        message = (f"The first line is {length:,} bytes long with no line break: is this a "
                   "CSV/TSV with one record per line? Save it with line breaks (a header row "
                   f"of at most {MAX_HEADER_BYTES:,} bytes, then one line per record).")
    return InputError(message, code="header_too_long", problem=Problem.UNPROCESSABLE,
                              details={"bytes": length, "limit": MAX_HEADER_BYTES,
                                       "line_break": line_break})


def too_many_columns(count: int, kind: str) -> InputError:
    """The 422 for a header over :data:`MAX_HEADER_COLUMNS` columns."""
    return InputError(
        f"The header row has {count:,} {kind}-separated columns; at most "
        f"{MAX_HEADER_COLUMNS:,} are accepted (real files have a few dozen to a few hundred). "
        "Check the delimiter and that the first line is the header row.",
        code="too_many_columns", problem=Problem.UNPROCESSABLE,
        details={"columns": count, "limit": MAX_HEADER_COLUMNS})
