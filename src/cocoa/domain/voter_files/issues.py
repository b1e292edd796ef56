"""What can be wrong with one row, each with a message naming the row."""

from __future__ import annotations

from dataclasses import dataclass

from cocoa.domain.voter_files.limits import MAX_LINE_BYTES


@dataclass(frozen=True, slots=True)
class RowIssue:
    """Something wrong with one row. ``fatal`` rows are not imported; the
    others (a bad date, a kept stray quote) are imported with a warning."""

    row: int
    code: str
    message: str
    fatal: bool = True


MAX_ID_LENGTH = 128  # voters.external_id
MAX_HOUSEHOLD_KEY = 400  # households.address_key


def check_id(row: int, external_id: str, column: str | None) -> RowIssue | None:
    if not external_id:
        return RowIssue(row, "missing_id", f"row {row}: the voter id column "
                        f"{column!r} is empty; the row was skipped")
    if len(external_id) > MAX_ID_LENGTH:
        return RowIssue(row, "bad_id", f"row {row}: the voter id is {len(external_id)} "
                        f"characters long (at most {MAX_ID_LENGTH}); the row was skipped")
    return None


def line_too_long(row: int) -> RowIssue:
    return RowIssue(row, "line_too_long",
                    f"row {row}: the line is longer than {MAX_LINE_BYTES:,} bytes (a voter row "
                    "is a few hundred); is a line break missing? The row was skipped, the "
                    "following rows are unaffected")


def address_unplaced(row: int, unplaced: str) -> RowIssue:
    """Text after a comma that is no unit, directional or city/state/ZIP is
    kept in the household key (it may name a different door), so the same
    door spelled without it makes a second household: worth a look."""
    return RowIssue(row, "address_unplaced",
                    f"row {row}: part of the residence address could not be read as a "
                    f"unit, directional or city/state/ZIP: {unplaced[:60]!r}; it was kept "
                    "in the household address, which may split this household from the "
                    "same address written without it", fatal=False)


def address_too_long(row: int, key: str) -> RowIssue:
    return RowIssue(row, "address_too_long",
                    f"row {row}: the residence address is {len(key)} characters long once "
                    f"normalised (at most {MAX_HOUSEHOLD_KEY}); the voter was imported "
                    "without a household", fatal=False)


def bad_value(row: int, code: str, name: str, text: str, expected: str) -> RowIssue:
    return RowIssue(row, code, f"row {row}: {name} {text[:40]!r} is not {expected}; "
                    "the voter was imported without it", fatal=False)


def stray_quote_kept(row: int) -> RowIssue:
    return RowIssue(row, "stray_quote",
                    f"row {row}: a double quote does not open or close a quoted field; "
                    "it was kept as part of the value", fatal=False)


def missing_address(row: int) -> RowIssue:
    """A file without an id keys voters by name and address; a row without an
    address could only be keyed by name, which merges namesakes."""
    return RowIssue(row, "missing_address",
                    f"row {row}: no street address; without a voter id column a voter is "
                    "identified by name and address, so the row was not imported. Fill in "
                    "the address (or import the file with a voter id column)")


def no_household(row: int) -> RowIssue:
    return RowIssue(row, "no_address",
                    f"row {row}: no street address; the voter was imported (by its id) "
                    "without a household", fatal=False)


def decoded_as_fallback(row: int, encoding: str) -> RowIssue:
    return RowIssue(row, "not_utf8",
                    f"row {row}: the text is not valid UTF-8 and was read as {encoding}; "
                    "check its accented letters (save the file as UTF-8 to be sure)",
                    fatal=False)
