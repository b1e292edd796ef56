"""Voter file layouts and a line-by-line reader that survives real-world mess.

Why line by line on bytes, not ``csv.reader`` over a text stream:

* an unmatched ``"`` can only ever damage its own line (a quoting reader that
  may span lines swallows every following record until the next quote);
* the byte offset of every line is known, so a job can checkpoint "the next
  unread byte" and resume there after a crash without re-reading the file;
* each line is decoded on its own, so one Latin-1 ``MUÑOZ`` in a UTF-8 file (or
  the reverse) costs that line a fallback decode, not the whole file;
* memory stays flat whatever the file size.

Multi-line quoted fields are therefore not supported; none of the public
layouts has them, and a row broken across lines is reported as ragged rather
than silently merged.

A layout is pure data (:class:`Layout`). Adding a state means writing one more
``Layout(...)`` literal and appending it to :data:`LAYOUTS`.

Row numbers are physical line numbers (the header is row 1, blank lines keep
their number), which is what a person sees in an editor or spreadsheet.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache, partial
from operator import itemgetter
from typing import IO, Any, Literal, NamedTuple

from cocoa.domain.addresses import locality_key, normalize_zip, street_parts, unplaced_part
from cocoa.jobs.types import JobValidationError

Quoting = Literal["enclosed", "csv"]
DateOrder = Literal["MDY", "YMD"]

# Bumped when parsing or keying changes in a way that should make an otherwise
# identical re-import rewrite its rows (it is part of every record hash).
PARSER_VERSION = "1"

UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SPACES = re.compile(r"\s+")
_HEADER_LOOSE = re.compile(r"[\s_\-]+")


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True, slots=True)
class Const:
    """A value every row of a layout shares (e.g. Contra Costa is always CA)."""

    value: str


Source = str | Const | tuple[str, ...]
"""Where a canonical field comes from: one column, a constant, or the first
non-empty of several candidate columns (aliases for hand-made files)."""


@dataclass(frozen=True, slots=True)
class AddressSpec:
    """How to build a residence address from a layout's columns.

    ``street`` columns are joined with single spaces (structured layouts split
    the line into house number, directional, name, suffix ...); ``unit``
    likewise. A free-form line that already contains the unit has no ``unit``.
    """

    street: tuple[str, ...]
    city: Source
    state: Source
    zip_code: Source
    unit: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything needed to read one voter file layout.

    ``columns`` is the documented header (used to detect the layout, to
    generate samples and to list in the API); ``required`` are the columns a
    file must have to be imported. Column names are matched case-insensitively,
    ignoring spaces, underscores and hyphens (``FirstName`` = ``first_name``).

    The file's own header decides how many fields a row has: columns beyond
    the documented ones (Ohio's one-column-per-election tail, which grows every
    election) are accepted and kept in the source record.
    """

    name: str
    description: str
    delimiter: str
    quoting: Quoting
    encodings: tuple[str, ...]
    columns: tuple[str, ...]
    required: tuple[str, ...]
    id_column: str | None  # None: derive a stable key (see simple_csv_key)
    fields: Mapping[str, Source]
    dates: Mapping[str, DateOrder]
    residence: AddressSpec
    mailing: tuple[str, ...] = ()
    integers: tuple[str, ...] = ()


def _cols(text: str) -> tuple[str, ...]:
    """A header written as whitespace-separated names (as the reference docs list it)."""
    return tuple(text.split())


def _loose(name: str) -> str:
    return _HEADER_LOOSE.sub("", name.strip().lstrip("\ufeff")).casefold()


_ELECTIONS = tuple(
    f"{stem}_{n}"
    for n in range(1, 6)
    for stem in (
        "ElectionAbbr", "ElectionDesc", "ElectionDate", "BallotPartyName", "BallotPartyAbbr",
        "BallotCounted", "ElectionType", "VotingMethodDesc", "DistrictID", "SubDistrict",
        "DistrictName",
    )
)

NC_STATEWIDE = Layout(
    name="nc_statewide",
    description="North Carolina statewide voter file (NCSBE layout of 2022): tab-delimited, "
    "every field quoted, Latin-1.",
    delimiter="\t",
    quoting="enclosed",
    encodings=("utf-8", "cp1252", "latin-1"),
    columns=_cols(
        """
        county_id county_desc voter_reg_num ncid last_name first_name middle_name
        name_suffix_lbl status_cd voter_status_desc reason_cd voter_status_reason_desc
        res_street_address res_city_desc state_cd zip_code mail_addr1 mail_addr2
        mail_addr3 mail_addr4 mail_city mail_state mail_zipcode full_phone_number
        confidential_ind registr_dt race_code ethnic_code party_cd gender_code
        birth_year age_at_year_end birth_state drivers_lic precinct_abbrv
        precinct_desc municipality_abbrv municipality_desc ward_abbrv ward_desc
        cong_dist_abbrv super_court_abbrv judic_dist_abbrv nc_senate_abbrv
        nc_house_abbrv county_commiss_abbrv county_commiss_desc township_abbrv
        township_desc school_dist_abbrv school_dist_desc fire_dist_abbrv
        fire_dist_desc water_dist_abbrv water_dist_desc sewer_dist_abbrv
        sewer_dist_desc sanit_dist_abbrv sanit_dist_desc rescue_dist_abbrv
        rescue_dist_desc munic_dist_abbrv munic_dist_desc dist_1_abbrv dist_1_desc
        vtd_abbrv vtd_desc
        """
    ),
    required=("ncid", "last_name", "first_name", "res_street_address", "res_city_desc",
              "state_cd", "zip_code"),
    id_column="ncid",
    fields={
        "first_name": "first_name", "middle_name": "middle_name", "last_name": "last_name",
        "name_suffix": "name_suffix_lbl", "birth_year": "birth_year",
        "registration_date": "registr_dt", "party": "party_cd", "status": "status_cd",
        "precinct": "precinct_abbrv", "county": "county_desc", "phone": "full_phone_number",
    },
    dates={"registration_date": "MDY"},
    integers=("birth_year",),
    residence=AddressSpec(street=("res_street_address",), city="res_city_desc",
                          state="state_cd", zip_code="zip_code"),
    mailing=("mail_addr1", "mail_addr2", "mail_addr3", "mail_addr4", "mail_city",
             "mail_state", "mail_zipcode"),
)

OH_SWVF = Layout(
    name="oh_swvf",
    description="Ohio statewide voter file (SWVF): comma-delimited, Latin-1, one trailing "
    "column per election (any number).",
    delimiter=",",
    quoting="csv",
    encodings=("utf-8", "cp1252", "latin-1"),
    columns=_cols(
        """
        SOS_VOTERID COUNTY_NUMBER COUNTY_ID LAST_NAME FIRST_NAME MIDDLE_NAME SUFFIX
        DATE_OF_BIRTH REGISTRATION_DATE VOTER_STATUS PARTY_AFFILIATION
        RESIDENTIAL_ADDRESS1 RESIDENTIAL_SECONDARY_ADDR RESIDENTIAL_CITY
        RESIDENTIAL_STATE RESIDENTIAL_ZIP RESIDENTIAL_ZIP_PLUS4 RESIDENTIAL_COUNTRY
        RESIDENTIAL_POSTALCODE MAILING_ADDRESS1 MAILING_SECONDARY_ADDRESS MAILING_CITY
        MAILING_STATE MAILING_ZIP MAILING_ZIP_PLUS4 MAILING_COUNTRY
        MAILING_POSTAL_CODE CAREER_CENTER CITY CITY_SCHOOL_DISTRICT
        COUNTY_COURT_DISTRICT CONGRESSIONAL_DISTRICT COURT_OF_APPEALS
        EDU_SERVICE_CENTER_DISTRICT EXEMPTED_VILL_SCHOOL_DISTRICT LIBRARY
        LOCAL_SCHOOL_DISTRICT MUNICIPAL_COURT_DISTRICT PRECINCT_NAME PRECINCT_CODE
        STATE_BOARD_OF_EDUCATION STATE_REPRESENTATIVE_DISTRICT STATE_SENATE_DISTRICT
        TOWNSHIP VILLAGE WARD
        """
    ),
    required=("SOS_VOTERID", "LAST_NAME", "FIRST_NAME", "RESIDENTIAL_ADDRESS1",
              "RESIDENTIAL_CITY", "RESIDENTIAL_STATE", "RESIDENTIAL_ZIP"),
    id_column="SOS_VOTERID",
    fields={
        "first_name": "FIRST_NAME", "middle_name": "MIDDLE_NAME", "last_name": "LAST_NAME",
        "name_suffix": "SUFFIX", "birth_date": "DATE_OF_BIRTH",
        "registration_date": "REGISTRATION_DATE", "party": "PARTY_AFFILIATION",
        "status": "VOTER_STATUS", "precinct": "PRECINCT_NAME", "county": "COUNTY_NUMBER",
    },
    dates={"birth_date": "YMD", "registration_date": "YMD"},
    residence=AddressSpec(street=("RESIDENTIAL_ADDRESS1",), unit=("RESIDENTIAL_SECONDARY_ADDR",),
                          city="RESIDENTIAL_CITY", state="RESIDENTIAL_STATE",
                          zip_code="RESIDENTIAL_ZIP"),
    mailing=("MAILING_ADDRESS1", "MAILING_SECONDARY_ADDRESS", "MAILING_CITY", "MAILING_STATE",
             "MAILING_ZIP"),
)

CONTRA_COSTA = Layout(
    name="contra_costa",
    description="Contra Costa County, CA: tab-delimited, structured residence address, "
    "five election blocks.",
    delimiter="\t",
    quoting="enclosed",
    encodings=("utf-8", "cp1252", "latin-1"),
    columns=_cols(
        """
        RegistrationNumber VoterID VoterTitle LastName FirstName MiddleName NameSuffix
        Gender ResidenceCity ResidenceZipCode HouseNumber PreDirection StreetName
        StreetSuffix PostDirection UnitAbbr UnitNumber MailAddress1 MailAddress2
        MailAddress3 MailAddress4 MailCity MailState MailZip PhoneNumber EmailAddress
        RegistrationDate BirthDate BirthPlace PartyName PartyAbbr Language
        VBMProgramStatus PrecinctID PrecinctPortion PrecinctName
        """
    ) + _ELECTIONS + ("StatusReason",),
    required=("VoterID", "LastName", "FirstName", "HouseNumber", "StreetName",
              "ResidenceCity", "ResidenceZipCode"),
    id_column="VoterID",
    fields={
        "first_name": "FirstName", "middle_name": "MiddleName", "last_name": "LastName",
        "name_suffix": "NameSuffix", "birth_date": "BirthDate",
        "registration_date": "RegistrationDate", "party": "PartyAbbr",
        "precinct": "PrecinctName", "county": Const("Contra Costa"), "phone": "PhoneNumber",
        "email": "EmailAddress",
    },
    dates={"birth_date": "MDY", "registration_date": "MDY"},
    residence=AddressSpec(
        street=("HouseNumber", "PreDirection", "StreetName", "StreetSuffix", "PostDirection"),
        unit=("UnitAbbr", "UnitNumber"), city="ResidenceCity", state=Const("CA"),
        zip_code="ResidenceZipCode",
    ),
    mailing=("MailAddress1", "MailAddress2", "MailAddress3", "MailAddress4", "MailCity",
             "MailState", "MailZip"),
)

SIMPLE_CSV = Layout(
    name="simple_csv",
    description="Hand-made list: comma-delimited with first_name,last_name and optional "
    "email,phone,address,city,state,zip. No voter id: voters are keyed by name + "
    "household (or email/phone when there is no address).",
    delimiter=",",
    quoting="csv",
    encodings=("utf-8", "cp1252"),
    columns=("first_name", "last_name", "email", "phone", "address", "city", "state", "zip"),
    required=("first_name", "last_name"),
    id_column=None,
    fields={
        "first_name": "first_name", "last_name": "last_name",
        "middle_name": ("middle_name",), "email": ("email", "email_address", "e_mail"),
        "phone": ("phone", "phone_number", "telephone"),
    },
    dates={},
    residence=AddressSpec(
        street=("address",), unit=(), city=("city",), state=("state",),
        zip_code=("zip", "zip_code", "zipcode", "postal_code"),
    ),
)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (NC_STATEWIDE, OH_SWVF, CONTRA_COSTA, SIMPLE_CSV)
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise JobValidationError(
            f"Unknown voter file format {name!r}; valid formats: auto, "
            f"{', '.join(LAYOUTS)}",
            code="unknown_format", status=422,
            details={"format": name, "valid": ["auto", *LAYOUTS]},
        ) from None


# --------------------------------------------------------------------------- splitting


def split_line(text: str, layout: Layout) -> tuple[list[str], bool]:
    """Split one decoded line into fields; the flag says a stray quote was kept.

    ``enclosed``: split on the delimiter (it never occurs inside a field in
    these layouts); a field wrapped in quotes loses the wrapper and ``""``
    becomes ``"``; any other quote is data (``O"NEIL`` stays ``O"NEIL``).

    ``csv``: RFC 4180 within the line. If the line's quoting is broken (a
    field opens a quote that never closes, or text follows a closing quote)
    the quotes are taken literally and the line is split on the delimiter;
    the caller decides whether that gives a usable row.
    """
    delimiter = layout.delimiter
    if layout.quoting == "enclosed":
        if '"' not in text:
            return text.split(delimiter), False
        if len(text) > 1 and text[0] == '"' and text[-1] == '"':
            # Fast path for "a"<tab>"b"<tab>"c": one split instead of one per field.
            parts = text[1:-1].split(f'"{delimiter}"')
            if text.count('"') == 2 * len(parts):  # no quote inside any field
                return parts, False
        return [_unwrap(p) for p in text.split(delimiter)], False
    if '"' not in text:
        return text.split(delimiter), False
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True)), False
    except csv.Error:
        return text.split(delimiter), True


def _unwrap(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


# --------------------------------------------------------------------------- limits

# Everything read from an upload at request time (the header, the line count)
# is bounded by these and by the upload size limit, so validating a file costs
# at most one pass over its bytes at C speed, however it is built. None is a
# setting: no real file comes near them, so there is nothing to tune.

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

_DELIMITER_NAMES = {"\t": "tab", ",": "comma"}


def header_too_long(length: int, line_break: bool) -> JobValidationError:
    """The 422 for a first line over :data:`MAX_HEADER_BYTES` (voter and parcel CSV files)."""
    if line_break:
        message = (f"The first line (the header row) is {length:,} bytes long; a header row "
                   f"is at most {MAX_HEADER_BYTES:,} bytes (a few hundred column names). "
                   "Check that the file is a CSV/TSV whose first line is its header.")
    else:
        message = (f"The first line is {length:,} bytes long with no line break: is this a "
                   "CSV/TSV with one record per line? Save it with line breaks (a header row "
                   f"of at most {MAX_HEADER_BYTES:,} bytes, then one line per record).")
    return JobValidationError(message, code="header_too_long", status=422,
                              details={"bytes": length, "limit": MAX_HEADER_BYTES,
                                       "line_break": line_break})


def too_many_columns(count: int, kind: str) -> JobValidationError:
    """The 422 for a header over :data:`MAX_HEADER_COLUMNS` columns."""
    return JobValidationError(
        f"The header row has {count:,} {kind}-separated columns; at most "
        f"{MAX_HEADER_COLUMNS:,} are accepted (real files have a few dozen to a few hundred). "
        "Check the delimiter and that the first line is the header row.",
        code="too_many_columns", status=422,
        details={"columns": count, "limit": MAX_HEADER_COLUMNS})


# --------------------------------------------------------------------------- header


@dataclass(frozen=True, slots=True)
class Header:
    """A file's header as read: display names (BOM and outer spaces removed,
    duplicates made unique) and their loose lookup keys."""

    names: tuple[str, ...]
    index: Mapping[str, int]  # loose name -> position (first occurrence)

    def position(self, column: str) -> int | None:
        return self.index.get(_loose(column))

    def missing(self, columns: Iterable[str]) -> list[str]:
        return [c for c in columns if self.position(c) is None]


def parse_header(text: str, layout: Layout) -> Header:
    """The header split with ``layout``'s delimiter; refused (422) above
    :data:`MAX_HEADER_COLUMNS` columns."""
    raw, _ = split_line(text.lstrip("\ufeff").rstrip("\r\n"), layout)
    if len(raw) > MAX_HEADER_COLUMNS:
        raise too_many_columns(len(raw), _DELIMITER_NAMES.get(layout.delimiter, "delimited"))
    given = [cell.strip() or f"column_{pos + 1}" for pos, cell in enumerate(raw)]
    index: dict[str, int] = {}
    for pos, name in enumerate(given):
        index.setdefault(_loose(name), pos)
    return Header(tuple(unique_names(given)), index)


def unique_names(names: Iterable[str]) -> list[str]:
    """``names`` with repeats made unique: the second ``a`` becomes ``a_2``,
    the third ``a_3``, skipping any ``a_<n>`` already taken (``a,a,a_2`` gives
    ``a, a_2, a_2_2``).

    Linear, whatever the header: each name remembers the next suffix to try,
    and every suffix tried and found taken is a distinct name already seen
    (``a_7`` can only be ``a`` with suffix 7), so there are at most twice as
    many tries as names. (Trying ``_2``, ``_3`` ... from the start for every
    repeat was quadratic: a 50 KB header of one repeated name took 87 s.)
    """
    seen: set[str] = set()
    next_suffix: dict[str, int] = {}
    unique: list[str] = []
    for name in names:
        candidate = name
        if candidate in seen:
            n = next_suffix.get(name, 2)
            while (candidate := f"{name}_{n}") in seen:
                n += 1
            next_suffix[name] = n + 1
        seen.add(candidate)
        unique.append(candidate)
    return unique


@dataclass(frozen=True, slots=True)
class Detection:
    """Which layout a header belongs to, and why (shown to the user)."""

    layout: Layout
    header: Header
    reason: str


def detect_layout(header: str | bytes) -> Detection:
    """Pick the layout whose required columns the header has.

    Several may match (an NC header also has ``first_name,last_name``, which is
    all simple CSV needs), so the most specific wins: the layout with the most
    required columns present, then the most documented columns present.
    """
    text = _decode_header(header)
    scored: list[tuple[int, int, Layout, Header]] = []
    notes: list[str] = []
    for layout in LAYOUTS.values():
        parsed = parse_header(text, layout)
        missing = parsed.missing(layout.required)
        if missing:
            notes.append(f"{layout.name}: missing {', '.join(missing)}")
            continue
        known = len(layout.columns) - len(parsed.missing(layout.columns))
        scored.append((len(layout.required), known, layout, parsed))
    if not scored:
        raise JobValidationError(
            "Could not recognise the voter file layout from its header ("
            + "; ".join(notes) + "). Pick a format explicitly or fix the header.",
            code="unknown_layout", status=422, details={"candidates": notes},
        )
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    _, known, layout, parsed = scored[0]
    others = [s[2].name for s in scored[1:]]
    reason = (f"detected {layout.name}: header has all {len(layout.required)} required columns "
              f"and {known} of its {len(layout.columns)} documented columns")
    if others:
        reason += f"; also compatible with {', '.join(others)} but {layout.name} is more specific"
    return Detection(layout, parsed, reason)


def _decode_header(header: str | bytes) -> str:
    """The header as text; NUL bytes are dropped, as :meth:`RowReader.decode`
    drops them from data rows."""
    if isinstance(header, str):
        return header.lstrip("\ufeff").replace("\x00", "")
    raw = header.removeprefix(UTF8_BOM).replace(b"\x00", b"")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class RowIssue:
    """Something wrong with one row. ``fatal`` rows are not imported; the
    others (a bad date, a kept stray quote) are imported with a warning."""

    row: int
    code: str
    message: str
    fatal: bool = True


class Residence(NamedTuple):
    """A normalised residence: the household it belongs to.

    A named tuple of strings, so the garbage collector stops tracking it: a
    reader caches tens of thousands of them, and every full collection would
    otherwise walk them all (that was a fifth of an import's CPU time).
    """

    key: str
    street_line: str
    unit: str | None
    city: str | None
    state: str | None
    zip_code: str | None


def residence(street: str | None, unit: str | None, city: str | None, state: str | None,
              zip_code: str | None) -> Residence | None:
    """The normalised residence of one row's address columns (None without a
    street). :class:`RowReader` caches it per distinct spelling."""
    if not street:
        return None
    # The caller caches; one parse for both (= parse_address's key, street_line
    # and unit, and address_household_key).
    street_key, street_line, unit_text = street_parts(street, unit)
    zip5 = normalize_zip(zip_code)
    return Residence(f"{street_key}|{locality_key(city, state, zip5)}", street_line or street,
                     unit_text or None, city, state.upper() if state else None, zip5 or None)


@dataclass(slots=True)
class VoterRecord:
    """One parsed data row.

    ``fields`` holds the canonical voter columns (text trimmed and inner runs
    of spaces collapsed; dates parsed; empty means None); ``values`` is every
    source field exactly as given, in header order (``names``), and
    :attr:`record` the same keyed by the header name. The dict is built on
    demand only: an import hashes and serialises the list directly, and a
    67-entry dict per row was a measurable share of the import.
    """

    row: int
    external_id: str
    fields: dict[str, object]
    values: list[str]
    names: tuple[str, ...] = field(repr=False)
    household: Residence | None  # None when the row has no street address
    warnings: list[RowIssue] = field(default_factory=list)

    @property
    def record(self) -> dict[str, str]:
        """Every source column exactly as given, keyed by the header name."""
        return dict(zip(self.names, self.values, strict=False))


# The canonical voter fields, in the order ``RowReader.parse_row`` returns
# them (the voters table's order). Every layout's ``fields`` are among them;
# the last five come from the residence and mailing columns.
CANONICAL_FIELDS = (
    "first_name", "middle_name", "last_name", "name_suffix", "birth_date", "birth_year",
    "registration_date", "party", "status", "precinct", "county", "phone", "email",
    "res_street", "res_city", "res_state", "res_zip", "mail_address",
)
_RESIDENCE_FIELDS = ("res_street", "res_city", "res_state", "res_zip", "mail_address")
_SLOT = {name: i for i, name in enumerate(CANONICAL_FIELDS)}
_FIRST_NAME, _LAST_NAME, _EMAIL, _PHONE = (
    _SLOT["first_name"], _SLOT["last_name"], _SLOT["email"], _SLOT["phone"])
_RES_STREET, _RES_CITY, _RES_STATE, _RES_ZIP, _MAIL_ADDRESS = (_SLOT[n] for n in _RESIDENCE_FIELDS)

ParsedRow = tuple[str, list[Any], list[str], "Residence | None", "list[RowIssue] | tuple[()]"]
"""What :meth:`RowReader.parse_row` gives for a good row: ``(external_id,
canonical values, source values, residence, warnings)``."""


class Line(NamedTuple):
    """One physical line: its number, where it starts, where the next starts.

    A named tuple rather than a frozen dataclass: one is made per line (three
    passes over every file), and a frozen dataclass's ``__init__`` costs
    several times as much.
    """

    number: int
    start: int
    end: int
    raw: bytes


def iter_lines(stream: IO[bytes], offset: int, number: int,
               max_line: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Yield lines from ``offset`` (which must be a line start), numbered from
    ``number``; line endings (LF, CRLF, or a bare CR in a file whose lines end
    that way) are removed from ``raw``.

    At most ``max_line`` bytes of a line are ever held: a longer line is
    yielded with its true ``start`` and ``end`` but a ``raw`` of its first
    ``max_line`` bytes plus a NUL (see :func:`_overlong`), so ``len(raw) >
    max_line`` tells the reader it was too long, and the rest is skipped
    at C speed without being kept.
    """
    if cr_line_endings(stream):
        yield from _iter_cr_lines(stream, offset, number, max_line)
        return
    stream.seek(offset)
    position = offset
    limit = max_line + 2  # room for a CRLF after a line of max_line bytes
    for chunk in iter(partial(stream.readline, limit), b""):
        end = position + len(chunk)
        if len(chunk) == limit and chunk[-1] != 0x0A:  # cut short: longer than max_line
            end += _skip_rest_of_line(stream)
            yield Line(number, position, end, _overlong(chunk, max_line))
        else:
            yield Line(number, position, end, chunk.rstrip(b"\r\n"))
        position = end
        number += 1


def _overlong(start: bytes | memoryview, max_line: int) -> bytes:
    """The ``raw`` of a line longer than ``max_line``: its first ``max_line``
    bytes and a NUL, so that it is longer than any line that fits and never
    blank (a line of spaces that long still has to be reported: what follows
    the kept part is unknown)."""
    return b"".join((memoryview(start)[:max_line], b"\x00"))  # one copy, not two


def _cut(raw: bytes, max_line: int) -> bytes:
    return raw if len(raw) <= max_line else _overlong(raw, max_line)


def _skip_rest_of_line(stream: IO[bytes]) -> int:
    """Read past the end of the current line (LF, or the end of the file)
    without keeping it; the number of bytes skipped."""
    skipped = 0
    while piece := stream.readline(_READ_BLOCK):
        skipped += len(piece)
        if piece[-1] == 0x0A:
            break
    return skipped


def cr_line_endings(stream: IO[bytes]) -> bool:
    """Does the file end its lines with a bare CR (old Mac, Excel's "CSV
    (Macintosh)")? Decided once per pass from the first line, so the per-line
    loop of every other file stays as it was (and a stray CR inside a line of
    an LF file stays data)."""
    stream.seek(0)
    return _has_bare_cr(stream.readline(_SNIFF_LINE))


def _iter_cr_lines(stream: IO[bytes], offset: int, number: int,
                   max_line: int) -> Iterator[Line]:
    """:func:`iter_lines` for a CR file: the file read in blocks and split
    after every line ending (bare CR, CRLF or LF), so offsets stay exact.

    Blocks, not LF-terminated chunks: a CR file has no LF, so a chunk would
    be the whole file. A CR at the end of a block may be the first half of a
    CRLF, so it waits for the next block. Of a line longer than ``max_line``
    only :func:`_overlong`'s start is kept, like :func:`iter_lines`.
    """
    stream.seek(offset)
    buf, base = b"", offset  # buf[0] is byte ``base`` of the file
    at = scan = 0  # the current line starts at buf[at]; no line ends before buf[scan]
    start = offset  # where the current line starts in the file
    overlong: bytes | None = None  # the kept start of a line longer than max_line
    eof = False
    while True:
        found = _LINE_END.search(buf, scan)
        if found is not None and (eof or found.end() < len(buf) or found.group() != b"\r"):
            end = base + found.end()
            yield Line(number, start, end, overlong or _cut(buf[at:found.start()], max_line))
            number, start, overlong, at, scan = number + 1, end, None, found.end(), found.end()
            continue
        if eof:
            if start < base + len(buf):  # a last line without a line ending
                yield Line(number, start, base + len(buf), overlong or _cut(buf[at:], max_line))
            return
        held = found.start() if found is not None else len(buf)  # the line's text so far
        if overlong is None and held - at > max_line:
            overlong = _overlong(memoryview(buf)[at:], max_line)
        if overlong is not None:  # drop what was read of it (but a trailing CR)
            base, buf, at, scan = base + held, buf[held:], 0, 0
        else:
            base, buf, at, scan = base + at, buf[at:], 0, held - at
        block = stream.read(_READ_BLOCK)
        eof = not block
        buf += block


_SNIFF_LINE = MAX_HEADER_BYTES + 2  # a header that is not refused, with its line ending
_READ_BLOCK = 1024 * 1024
_LINE_END = re.compile(rb"\r\n?|\n")


def _has_bare_cr(chunk: bytes) -> bool:
    """Does a line as read (LF-terminated, or the last or cut-short one) hold a CR not
    part of its final CRLF? One ``find`` (C speed): the first CR of a CRLF
    line is the one just before its LF."""
    cr = chunk.find(b"\r")
    return cr >= 0 and (cr != len(chunk) - 2 or chunk[-1] != 0x0A)


# Characters ``json.dumps(..., ensure_ascii=False)`` escapes in a string.
_JSON_SPECIAL = re.compile(r'[\x00-\x1f"\\]').search


class RecordJson:
    """Serialise a row's source fields as the JSON object ``{header: value}``.

    Byte for byte what ``json.dumps(record, ensure_ascii=False,
    separators=(",", ":"))`` gives, but when no value needs escaping (nearly
    every row) it is one ``str.join`` of the values interleaved with the
    header's ``{"name":"`` / ``","name":"`` pieces (built once), about seven
    times faster than the generic encoder.
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        keys = [json.dumps(n, ensure_ascii=False) for n in names]
        self._pieces = [f'{"{" if i == 0 else chr(34) + ","}{k}:"' for i, k in enumerate(keys)]
        self._width = len(names)

    def __call__(self, values: list[str]) -> str:
        if len(values) == self._width and self._width and not _JSON_SPECIAL("".join(values)):
            parts: list[str] = [""] * (2 * self._width)
            parts[0::2] = self._pieces
            parts[1::2] = values
            parts.append('"}')
            return "".join(parts)
        return json.dumps(dict(zip(self.names, values, strict=False)), ensure_ascii=False,
                          separators=(",", ":"))


def _ascii_compatible(encoding: str) -> bool:
    """Does ``encoding`` decode every ASCII byte to the same character?"""
    ascii_bytes = bytes(range(128))
    try:
        return ascii_bytes.decode(encoding) == ascii_bytes.decode("ascii")
    except UnicodeDecodeError:
        return False


HOME_CACHE_SIZE = 200_000  # distinct address spellings a reader remembers (~60 MB)
DATE_CACHE_SIZE = 50_000  # distinct date spellings per order (a file has a few thousand)
_MISSING: Any = object()
_RAGGED: Any = object()  # "wrong number of fields", from RowReader._field_bytes


class RowReader:
    """Turns lines of one file into :class:`VoterRecord` or :class:`RowIssue`.

    Built once per file from its header (every column position is looked up
    here, not per row); cheap to call per line.
    """

    def __init__(self, layout: Layout, header: Header) -> None:
        self.layout = layout
        self.header = header
        self.width = len(header.names)
        self.record_json = RecordJson(header.names)
        self._id_pos = header.position(layout.id_column) if layout.id_column else None
        fields = {name: self._locate(src) for name, src in layout.fields.items()}
        unknown = set(fields) - set(CANONICAL_FIELDS)
        if unknown:
            raise ValueError(f"layout {layout.name}: unknown canonical fields {sorted(unknown)}")
        # One-column fields (nearly all) take a fast path in ``parse_row``: one
        # C-level pick of their values, one comprehension to clean them, one
        # C-level spread of the results into their canonical slots.
        single = [(n, w[0]) for n, w in fields.items() if isinstance(w, tuple) and len(w) == 1]
        self._pick = _picker([pos for _, pos in single])
        names = [n for n, _ in single]
        self._spread = _picker([names.index(n) if n in names else len(names)
                                for n in CANONICAL_FIELDS])
        self._other = [(_SLOT[n], w) for n, w in fields.items()
                       if not (isinstance(w, tuple) and len(w) == 1)]
        # Conversions apply to layout fields only (``_convert`` looked them up
        # before the residence columns were filled in).
        self._dates = [(_SLOT[n], order, n) for n, order in layout.dates.items() if n in fields]
        self._integers = [(_SLOT[n], n) for n in layout.integers if n in fields]
        # The canonical dict of ``parse``: the layout's fields, then the residence.
        self._field_slots = [(n, _SLOT[n]) for n in (*fields, *_RESIDENCE_FIELDS)]
        res = layout.residence
        self._street = [p for c in res.street if (p := header.position(c)) is not None]
        self._unit = [p for c in res.unit if (p := header.position(c)) is not None]
        self._city = self._locate(res.city)
        self._state = self._locate(res.state)
        self._zip = self._locate(res.zip_code)
        self._mail = [p for c in layout.mailing if (p := header.position(c)) is not None]
        self._mail_pick = _picker(self._mail)
        self._delimiter = layout.delimiter.encode("ascii")
        self._quoted_delimiter = b'"' + self._delimiter + b'"'
        # Only then can no line be undecodable, so a byte-level split is exact.
        self._latin1_last = layout.encodings[-1] == "latin-1"
        # Then a pure-ASCII line decodes the same whichever encoding would win.
        self._ascii_first = _ascii_compatible(layout.encodings[0])
        self._homes: dict[str, Residence | None] = {}
        # Per date order: text -> its date (None if not one); dates repeat a lot.
        self._parsed_dates: dict[str, dict[str, date | None]] = {"MDY": {}, "YMD": {}}

    def residence(self, street: str | None, unit: str | None, city: str | None,
                  state: str | None, zip_code: str | None) -> Residence | None:
        """:func:`residence`, once per distinct spelling: voters share
        addresses, and the normaliser is the most expensive step of a row.

        A plain dict per reader (one file) rather than a process-wide
        ``lru_cache``: its keys are strings and its values tuples of strings,
        which the garbage collector stops tracking, where an ``lru_cache``
        keeps one tracked link object per entry for the life of the process.
        The key is the five values joined by NUL, which no decoded value
        contains (``decode`` drops it) and no value is empty (empty is None):
        one string instead of a tuple of five, about a third less memory.
        """
        key = "\x00".join((street or "", unit or "", city or "", state or "", zip_code or ""))
        home = self._homes.get(key, _MISSING)
        if home is _MISSING:
            if len(self._homes) >= HOME_CACHE_SIZE:
                self._homes.clear()  # bounded memory; rows with one address are close
            home = self._homes[key] = residence(street, unit, city, state, zip_code)
        return home

    def _locate(self, source: Source) -> Const | tuple[int, ...]:
        if isinstance(source, Const):
            return source
        names = (source,) if isinstance(source, str) else source
        return tuple(p for n in names if (p := self.header.position(n)) is not None)

    def decode(self, line: Line) -> str | RowIssue:
        raw = line.raw
        if len(raw) > MAX_LINE_BYTES:  # only its start was read: see iter_lines
            return _line_too_long(line.number)
        if self._ascii_first and raw.isascii():  # most lines: no fallback to try
            text = raw.decode("ascii")
            return text.replace("\x00", "") if "\x00" in text else text
        start = end = 0
        for encoding in self.layout.encodings:
            try:
                return raw.decode(encoding).replace("\x00", "")
            except UnicodeDecodeError as exc:
                # Only the positions: keeping the exception would tie it, its
                # traceback and this frame into a reference cycle, one per
                # non-UTF-8 line for the garbage collector (a third of the
                # parse's CPU on a Latin-1 file).
                start, end = exc.start, exc.end
        return RowIssue(line.number, "undecodable",
                        f"row {line.number}: bytes {raw[start:end]!r} at "
                        f"byte {start} are not valid in any of "
                        f"{', '.join(self.layout.encodings)}; save the file as UTF-8")

    def split(self, line: Line) -> tuple[list[str], list[RowIssue]] | RowIssue:
        """Decode and split a line into exactly ``width`` fields, or say why not."""
        text = self.decode(line)
        if isinstance(text, RowIssue):
            return text
        values, stray_quote = split_line(text, self.layout)
        n = len(values)
        # Strict on purpose: an extra delimiter anywhere shifts every later value,
        # and "the extra fields are empty" cannot tell that from a trailing one.
        # (A writer that ends every line with a delimiter ends its header with
        # one too, which gives an unnamed last column and the widths match.)
        if n != self.width:
            return self._ragged(line.number, n, stray_quote)
        return values, [_stray_quote(line.number)] if stray_quote else []

    def _ragged(self, row: int, n: int, stray_quote: bool) -> RowIssue:
        if stray_quote:
            return RowIssue(row, "unbalanced_quote",
                            f"row {row}: a field opens a double quote that is never closed "
                            f"and the row does not split into {self.width} fields (got {n}); "
                            "the row was skipped, the following rows are unaffected")
        return RowIssue(row, "ragged_row",
                        f"row {row}: has {n} fields but the header has {self.width}; "
                        "the row was skipped")

    def voter_id(self, line: Line) -> str | None:
        """The id ``parse`` would give this line, or None if it would reject it.

        For the pre-pass that finds repeated ids: on bytes, without decoding
        the line or building a record, whenever that provably agrees with
        ``parse`` (the delimiter and quote are ASCII, so splitting bytes and
        text gives the same fields); otherwise the full path.
        """
        raw = line.raw
        if len(raw) > MAX_LINE_BYTES:
            return None
        if self._id_pos is not None and self._latin1_last and b"\x00" not in raw:
            voter_id = self._field_bytes(raw, self._id_pos)
            if voter_id is _RAGGED:
                return None
            if voter_id is not None and voter_id.isascii():
                text = voter_id.decode("ascii").strip()
                return text if text and len(text) <= MAX_ID_LENGTH else None
        item = self.parse(line)
        return item.external_id if isinstance(item, VoterRecord) else None

    def _field_bytes(self, raw: bytes, pos: int) -> bytes | None:
        """Field ``pos`` of a line split as bytes; :data:`_RAGGED` when the
        line has the wrong number of fields, None when only the full path can
        tell. Counts the delimiters and splits only up to ``pos`` (``count``
        and ``split`` both scan for non-overlapping matches left to right, so
        the count is the full split's length minus one)."""
        if b'"' not in raw:
            if raw.count(self._delimiter) != self.width - 1:
                return _RAGGED
            return raw.split(self._delimiter, pos + 1)[pos]
        if self.layout.quoting == "enclosed" and len(raw) > 1 and raw[:1] == raw[-1:] == b'"':
            inner = raw[1:-1]
            n = inner.count(self._quoted_delimiter) + 1
            if raw.count(b'"') == 2 * n:
                if n != self.width:
                    return _RAGGED
                return inner.split(self._quoted_delimiter, pos + 1)[pos]
        return None

    def external_id(self, values: list[str]) -> str:
        return values[self._id_pos].strip() if self._id_pos is not None else ""

    def parse(self, line: Line) -> VoterRecord | RowIssue:
        item = self.parse_row(line)
        if isinstance(item, RowIssue):
            return item
        external_id, row, values, home, warnings = item
        fields = {name: row[slot] for name, slot in self._field_slots}
        return VoterRecord(line.number, external_id, fields, values, self.header.names, home,
                           list(warnings))

    def parse_row(self, line: Line) -> ParsedRow | RowIssue:
        """:meth:`parse` without the :class:`VoterRecord`: ``(external_id,
        canonical values in CANONICAL_FIELDS order, source values, residence,
        warnings)``. What an import needs, at a fraction of the allocations
        (a batch's worth of dicts and records kept the garbage collector busy).
        The warnings are an empty tuple when there are none."""
        text = self.decode(line)
        if type(text) is not str:
            return text  # type: ignore[return-value]  # a RowIssue
        values, stray_quote = split_line(text, self.layout)
        if len(values) != self.width:
            return self._ragged(line.number, len(values), stray_quote)
        warnings: list[RowIssue] | tuple[()] = [_stray_quote(line.number)] if stray_quote else ()
        id_pos = self._id_pos
        if id_pos is not None:
            external_id = values[id_pos].strip()
            if not external_id or len(external_id) > MAX_ID_LENGTH:
                return _check_id(line.number, external_id, self.layout)  # type: ignore[return-value]
        cleaned = [(" ".join(text.split()) if "  " in text or "\t" in text else text.strip())
                   or None for text in self._pick(values)]
        cleaned.append(None)  # what the slots of fields the layout lacks get
        row: list[Any] = list(self._spread(cleaned))
        for slot, where in self._other:
            row[slot] = self._value(values, where)
        if self._dates or self._integers:
            warnings = self._convert(line.number, row, warnings)
        street = _join(values, self._street)
        unit = _join(values, self._unit)
        row[_RES_STREET] = f"{street} {unit}" if street and unit else street
        row[_RES_CITY] = city = self._value(values, self._city)
        row[_RES_STATE] = state = self._value(values, self._state)
        row[_RES_ZIP] = zip_code = self._value(values, self._zip)
        row[_MAIL_ADDRESS] = _join_picked(self._mail_pick(values), ", ") if self._mail else None
        home = self.residence(street, unit, city, state, zip_code)
        if id_pos is None:
            external_id = simple_csv_key(
                _str(row[_FIRST_NAME]), _str(row[_LAST_NAME]), home.key if home else None,
                _str(row[_EMAIL]), _str(row[_PHONE]))
        if home is not None and (unplaced := unplaced_part(street, unit)):
            warnings = [*warnings, _address_unplaced(line.number, unplaced)]
        if home is not None and len(home.key) > MAX_HOUSEHOLD_KEY:
            warnings = [*warnings, _address_too_long(line.number, home.key)]
            home = None
        return external_id, row, values, home, warnings

    @staticmethod
    def _value(values: list[str], where: Const | tuple[int, ...]) -> str | None:
        if isinstance(where, Const):
            return where.value
        for pos in where:
            text = values[pos]
            text = " ".join(text.split()) if "  " in text or "\t" in text else text.strip()
            if text:
                return text
        return None

    def _convert(self, row: int, values: list[Any], warnings: list[RowIssue] | tuple[()],
                 ) -> list[RowIssue] | tuple[()]:
        """Dates and whole numbers in place; returns the warnings (a new list
        when one is added)."""
        for slot, order, name in self._dates:
            text = values[slot]
            if isinstance(text, str):
                known = self._parsed_dates[order]
                parsed = known.get(text, _MISSING)
                if parsed is _MISSING:
                    if len(known) >= DATE_CACHE_SIZE:
                        known.clear()
                    parsed = known[text] = parse_date(text, order)
                values[slot] = parsed
                if parsed is None:
                    warnings = [*warnings, _bad_value(
                        row, "bad_date", name, text,
                        "MM/DD/YYYY" if order == "MDY" else "YYYY-MM-DD")]
        for slot, name in self._integers:
            text = values[slot]
            if isinstance(text, str):
                number = values[slot] = int(text) if text.isdecimal() and len(text) <= 9 else None
                if number is None:
                    warnings = [*warnings, _bad_value(row, "bad_number", name, text,
                                                      "a whole number")]
        return warnings


MAX_ID_LENGTH = 128  # voters.external_id
MAX_HOUSEHOLD_KEY = 400  # households.address_key


def _check_id(row: int, external_id: str, layout: Layout) -> RowIssue | None:
    if not external_id:
        return RowIssue(row, "missing_id", f"row {row}: the voter id column "
                        f"{layout.id_column!r} is empty; the row was skipped")
    if len(external_id) > MAX_ID_LENGTH:
        return RowIssue(row, "bad_id", f"row {row}: the voter id is {len(external_id)} "
                        f"characters long (at most {MAX_ID_LENGTH}); the row was skipped")
    return None


def _line_too_long(row: int) -> RowIssue:
    return RowIssue(row, "line_too_long",
                    f"row {row}: the line is longer than {MAX_LINE_BYTES:,} bytes (a voter row "
                    "is a few hundred); is a line break missing? The row was skipped, the "
                    "following rows are unaffected")


def _address_unplaced(row: int, unplaced: str) -> RowIssue:
    """Text after a comma that is no unit, directional or city/state/ZIP is
    kept in the household key (it may name a different door), so the same
    door spelled without it makes a second household: worth a look."""
    return RowIssue(row, "address_unplaced",
                    f"row {row}: part of the residence address could not be read as a "
                    f"unit, directional or city/state/ZIP: {unplaced[:60]!r}; it was kept "
                    "in the household address, which may split this household from the "
                    "same address written without it", fatal=False)


def _address_too_long(row: int, key: str) -> RowIssue:
    return RowIssue(row, "address_too_long",
                    f"row {row}: the residence address is {len(key)} characters long once "
                    f"normalised (at most {MAX_HOUSEHOLD_KEY}); the voter was imported "
                    "without a household", fatal=False)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bad_value(row: int, code: str, name: str, text: str, expected: str) -> RowIssue:
    return RowIssue(row, code, f"row {row}: {name} {text[:40]!r} is not {expected}; "
                    "the voter was imported without it", fatal=False)


def _clean(value: str) -> str:
    """Canonical text: outer whitespace trimmed, inner runs collapsed."""
    if "  " in value or "\t" in value:
        return " ".join(value.split())
    return value.strip()


def _join(values: list[str], positions: list[int], sep: str = " ") -> str | None:
    if not positions:
        return None
    if len(positions) == 1:
        return _clean(values[positions[0]]) or None
    raw = [values[p] for p in positions]
    if not "".join(raw).strip():  # the common case for mailing addresses
        return None
    parts = [t for v in raw if (t := _clean(v))]
    return sep.join(parts) if parts else None


def _join_picked(raw: tuple[str, ...], sep: str) -> str | None:
    """:func:`_join` of values already picked (several of them)."""
    if not "".join(raw).strip():  # the common case for mailing addresses
        return None
    parts = [t for v in raw if (t := _clean(v))]
    return sep.join(parts) if parts else None


def _picker(positions: list[int]) -> Callable[[list[Any]], tuple[Any, ...]]:
    """``itemgetter`` that always returns a tuple (also for one position or none)."""
    if len(positions) > 1:
        return itemgetter(*positions)
    if positions:
        pos = positions[0]
        return lambda values: (values[pos],)
    return lambda values: ()


def _stray_quote(row: int) -> RowIssue:
    return RowIssue(row, "stray_quote",
                    f"row {row}: a double quote does not open or close a quoted field; "
                    "it was kept as part of the value", fatal=False)


@lru_cache(maxsize=65_536)  # a file has a few thousand distinct dates
def parse_date(text: str, order: DateOrder) -> date | None:
    """``MM/DD/YYYY`` or ``YYYY-MM-DD`` without ``strptime`` (which costs
    more than the rest of a row); a time part after a space is ignored."""
    text = text.split(" ", 1)[0]
    parts = text.split("/" if order == "MDY" else "-")
    if len(parts) != 3 or not all(p.isdecimal() for p in parts):  # what int() takes; '²' is a digit
        return None
    if order == "MDY":
        month, day, year = parts
    else:
        year, month, day = parts
    if len(year) != 4:
        return None
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


# --------------------------------------------------------------------------- files


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
            raise JobValidationError(
                f"The first {MAX_HEADER_BYTES:,} bytes of the file are blank lines; the "
                "header row must come first. Remove the blank lines at the top.",
                code="no_header", status=422)
    return None


def _line_ending_bytes(stream: IO[bytes], line: Line) -> int:
    """How many of the bytes just before ``line.end`` are its line ending (0-2)."""
    stream.seek(max(line.start, line.end - 2))
    tail = stream.read(line.end - stream.tell())
    return 2 if tail.endswith(b"\r\n") else 1 if tail.endswith((b"\n", b"\r")) else 0


def header_text(line: Line) -> str:
    return _decode_header(line.raw)


def resolve_layout(header_line: Line, requested: str) -> Detection:
    """The layout for ``requested`` (a layout name or ``auto``) and the parsed
    header; raises a 422 naming the missing columns."""
    text = header_text(header_line)
    if requested == "auto":
        return detect_layout(text)
    layout = get_layout(requested)
    header = parse_header(text, layout)
    missing = header.missing(layout.required)
    if missing:
        raise JobValidationError(
            f"The file is missing required {layout.name} column(s): {', '.join(missing)}. "
            f"Required: {', '.join(layout.required)}.",
            code="missing_columns", status=422,
            details={"format": layout.name, "missing": missing,
                     "required": list(layout.required)},
        )
    return Detection(layout, header, f"{layout.name} as requested")


@dataclass(frozen=True, slots=True)
class FileInspection:
    """What validation learned about an upload."""

    layout: Layout
    requested: str
    reason: str
    columns: tuple[str, ...]
    data_offset: int  # byte offset of the first line after the header
    first_row: int  # its row number
    rows: int  # non-blank data lines


def inspect_file(stream: IO[bytes], format: str, max_items: int) -> FileInspection:
    """Pre-flight check at validation time, so a bad file is refused with a
    clear 4xx before a job exists instead of failing halfway."""
    if format != "auto":
        get_layout(format)
    stream.seek(0)
    _check_raw_text(stream.read(_SNIFF_BYTES))
    header_line = read_header_line(stream)
    if header_line is None:
        raise JobValidationError("The file is empty: expected a header row and data rows.",
                                 code="empty_file", status=422)
    detection = resolve_layout(header_line, format)
    rows, complete = _count_data_lines(stream, header_line.end, detection.layout, max_items)
    if rows == 0:
        raise JobValidationError("The file has a header but no data rows.",
                                 code="no_data_rows", status=422)
    if rows > max_items:
        counted = f"{rows}" if complete else f"more than {max_items}"
        raise JobValidationError(
            f"The file has {counted} data rows; at most {max_items} are allowed per job. "
            "Split the file and import the parts as separate jobs.",
            code="too_many_items", status=422,
            details={"rows": rows if complete else None, "limit": max_items},
        )
    return FileInspection(detection.layout, format, detection.reason, detection.header.names,
                          header_line.end, header_line.number + 1, rows)


_SNIFF_BYTES = 512
_COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"PK\x05\x06": "zip",
                     b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"7z\xbc\xaf\x27\x1c": "7z"}


def _check_raw_text(start: bytes) -> None:
    """Refuse, with what to do, files that are not plain 8-bit text: UTF-16
    (with or without a BOM) and compressed archives."""
    for magic, kind in _COMPRESSED_MAGIC.items():
        if start.startswith(magic):
            raise JobValidationError(
                f"The file is compressed ({kind}); extract the .txt/.csv voter file from it "
                "and upload that.", code="compressed_file", status=422,
                details={"compression": kind})
    if start[:2] in _UTF16_BOMS or _looks_utf16(start):
        raise JobValidationError("The file is UTF-16 encoded; save it as UTF-8 or Latin-1 CSV.",
                                 code="unsupported_encoding", status=422)


def _looks_utf16(start: bytes) -> bool:
    """UTF-16 without a BOM: text in it is mostly ASCII, so every other byte
    (the odd ones for little-endian, the even ones for big-endian) is NUL."""
    if len(start) < 8:
        return False
    even, odd = start[0::2], start[1::2]
    return (odd.count(0) >= 0.9 * len(odd) > even.count(0)
            or even.count(0) >= 0.9 * len(even) > odd.count(0))


def count_data_lines(stream: IO[bytes], offset: int, layout: Layout) -> int:
    """Non-blank lines (see :func:`is_blank`) from ``offset`` to the end."""
    return _count_data_lines(stream, offset, layout, None)[0]


def _count_data_lines(stream: IO[bytes], offset: int, layout: Layout,
                      stop_above: int | None) -> tuple[int, bool]:
    """(non-blank lines from ``offset`` on, whether all were counted).

    Counted a block at a time with no Python work per line (a file of
    millions of short or blank lines costs what its bytes cost): the filler
    bytes of :func:`is_blank` are deleted, so a line is non-blank when
    something is left of it, and ``bytes.split()`` counts those. With
    ``stop_above`` it stops after the block where the count passes it, which
    is all a refusal needs.
    """
    delete, table = _count_tables(layout.delimiter, cr_line_endings(stream))
    stream.seek(offset)
    count, open_line = 0, False  # open_line: the last block ended inside a counted line
    while block := stream.read(_READ_BLOCK):
        kept = block.translate(table, delete)
        if not kept:
            continue
        count += len(kept.split()) - (open_line and kept[0] != 0x0A)
        open_line = kept[-1] != 0x0A
        if stop_above is not None and count > stop_above:
            return count, not stream.read(1)
    return count, True


@lru_cache(maxsize=16)
def _count_tables(delimiter: str, cr_lines: bool) -> tuple[bytes, bytes]:
    """(bytes to delete, translation) for :func:`_count_data_lines`: the
    filler goes, and every line ending becomes the one whitespace byte
    left (LF; a CR too in a CR file, where a CRLF then reads as an empty
    line, which is not counted); the other bytes ``split`` takes for
    whitespace (VT, FF) become ``x``, as for :func:`is_blank` they are text."""
    endings = b"\r\n" if cr_lines else b"\n"
    delete = bytes(b for b in _filler(delimiter) if b not in endings)
    table = bytearray(range(256))
    table[0x0B] = table[0x0C] = ord("x")
    if cr_lines:
        table[0x0D] = 0x0A
    return delete, bytes(table)


def _blank_bytes(layout: Layout) -> bytes:
    return _filler(layout.delimiter)


@lru_cache(maxsize=16)
def _filler(delimiter: str) -> bytes:
    """Cached: ``is_blank`` runs twice per line of every import."""
    return b' \t\r\n"' + delimiter.encode()


def is_blank(raw: bytes, layout: Layout) -> bool:
    """Blank lines, and lines of nothing but delimiters and quotes (what a
    spreadsheet writes for an empty row), are skipped without an error."""
    return not raw.strip(_blank_bytes(layout))


def iter_rows(stream: IO[bytes], reader: RowReader, offset: int,
              number: int) -> Iterator[tuple[Line, VoterRecord | RowIssue]]:
    """Every data row from ``offset`` on, parsed; blank lines are skipped."""
    for line in iter_lines(stream, offset, number):
        if not is_blank(line.raw, reader.layout):
            yield line, reader.parse(line)


# --------------------------------------------------------------------------- keys


def simple_csv_key(first: str | None, last: str | None, household: str | None,
                   email: str | None, phone: str | None) -> str:
    """The stable voter key for files without a voter id.

    ``sc:`` + the first 32 hex digits of SHA-256 over the upper-cased,
    space-collapsed first and last name and the household key (so the same
    person at the same residence, however the address is spelled, is one
    voter). Without an address the lower-cased email stands in for the
    household, then the phone digits. Two different people with the same name
    at the same address collapse into one; that is the price of having no id.
    """
    anchor = household or (email or "").strip().lower() or "".join(
        ch for ch in (phone or "") if ch.isdigit())
    material = "|".join((_name_key(first), _name_key(last), anchor))
    return "sc:" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def _name_key(name: str | None) -> str:
    return " ".join((name or "").upper().split())
