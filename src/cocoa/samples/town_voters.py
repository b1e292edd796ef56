"""The people of one sample town, written in every supported voter layout.

``cocoa samples`` gives a newcomer one file per layout, all about the same
households, so that any of them imports into the same town and links to the
same parcels. Each file carries the same few problems a real file has, at
known rows, so a reader can see what the import does with them:

* a bad date (``02/30/2019``) - imported with a ``bad_date`` warning
  (the simple list has no date column, so it has none);
* a ragged row (two fields short) - an item error, ``ragged_row``;
* an address with text the normaliser cannot place (``, THE OAKS``) -
  imported with an ``address_unplaced`` warning;
* a duplicate voter id: a voter listed again after moving next door (the
  later row wins; the simple list repeats a person instead).

The :class:`VoterSample` of each file says where these are, so the README
and the tests are written from the same facts as the file.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cocoa.domain.voter_files import CONTRA_COSTA, NC_STATEWIDE, OH_SWVF, SIMPLE_CSV, Layout
from cocoa.samples.parcels import SampleHousehold
from cocoa.samples.voters import FIRST_NAMES, LAST_NAMES

BAD_DATE_ROW = 2  # data row indexes (0 = the first row after the header)
RAGGED_ROW = 4
UNPLACED_ROW = 6
UNPLACED_TEXT = "THE OAKS"
DIRECTIONALS = {"N", "S", "E", "W", "NORTH", "SOUTH", "EAST", "WEST"}
OH_ELECTIONS = ("PRIMARY-05/03/2022", "GENERAL-11/08/2022", "PRIMARY-03/19/2024",
                "GENERAL-11/05/2024")


@dataclass(frozen=True, slots=True)
class Person:
    number: int
    first: str
    middle: str
    last: str
    home: SampleHousehold
    registered: tuple[int, int, int]  # year, month, day
    born: tuple[int, int, int]
    party: str


@dataclass(slots=True)
class VoterSample:
    """One voter file and what importing it does (lines count the header as 1)."""

    name: str
    layout: str
    data: bytes
    rows: int
    errors: dict[int, str] = field(default_factory=dict)  # item errors: line -> code
    warnings: dict[int, str] = field(default_factory=dict)  # imported with a warning
    superseded_line: int = 0  # the earlier row of the repeated voter (the later one wins)
    repeated_line: int = 0


def town_people(homes: Sequence[SampleHousehold], seed: int) -> list[Person]:
    """One to three voters per household, the same for every layout."""
    rng = random.Random(seed)
    people: list[Person] = []
    for home in homes:
        last = rng.choice(LAST_NAMES)
        # distinct first names: the simple list keys people by name and home
        for first in rng.sample(FIRST_NAMES, rng.randint(1, 3)):
            people.append(Person(
                len(people) + 1, first, rng.choice(("", "ANN", "LEE", "MARIE")),
                last, home, (rng.randint(1990, 2024), rng.randint(1, 12), rng.randint(1, 28)),
                (rng.randint(1940, 2006), rng.randint(1, 12), rng.randint(1, 28)),
                rng.choice(("DEM", "REP", "UNA", "UNA", "LIB"))))
    return people


# --------------------------------------------------------------------------- one row per layout

Row = dict[str, str]


def _mdy(date: tuple[int, int, int]) -> str:
    return f"{date[1]:02d}/{date[2]:02d}/{date[0]}"


def _ymd(date: tuple[int, int, int]) -> str:
    return f"{date[0]}-{date[1]:02d}-{date[2]:02d}"


def _street_line(p: Person) -> str:
    return f"{p.home.street} APT {p.home.unit}" if p.home.unit else p.home.street


def _nc(p: Person, problem: str | None) -> Row:
    street = _street_line(p)
    return {
        "county_id": "92", "county_desc": "WAKE", "voter_reg_num": f"{p.number:012d}",
        "ncid": f"SW{p.number:07d}", "last_name": p.last, "first_name": p.first,
        "middle_name": p.middle, "status_cd": "A", "voter_status_desc": "ACTIVE",
        "res_street_address": f"{street}, {UNPLACED_TEXT}" if problem == "unplaced" else street,
        "res_city_desc": p.home.city, "state_cd": p.home.state, "zip_code": p.home.zip_code,
        "registr_dt": "02/30/2019" if problem == "bad_date" else _mdy(p.registered),
        "party_cd": p.party, "birth_year": str(p.born[0]),
        "precinct_abbrv": f"{p.home.zip_code[-2:]}-0{1 + p.number % 3}",
    }


def _ohio(p: Person, problem: str | None) -> Row:
    row = {
        "SOS_VOTERID": f"OH{p.number:010d}", "COUNTY_NUMBER": "25", "LAST_NAME": p.last,
        "FIRST_NAME": p.first, "MIDDLE_NAME": p.middle, "DATE_OF_BIRTH": _ymd(p.born),
        "REGISTRATION_DATE": "2019-02-30" if problem == "bad_date" else _ymd(p.registered),
        "VOTER_STATUS": "ACTIVE", "PARTY_AFFILIATION": p.party[:1] if p.party != "UNA" else "",
        "RESIDENTIAL_ADDRESS1": p.home.street + (f", {UNPLACED_TEXT}" if problem == "unplaced" else ""),
        "RESIDENTIAL_SECONDARY_ADDR": f"APT {p.home.unit}" if p.home.unit else "",
        "RESIDENTIAL_CITY": p.home.city, "RESIDENTIAL_STATE": p.home.state,
        "RESIDENTIAL_ZIP": p.home.zip_code, "PRECINCT_NAME": f"PRECINCT {'ABC'[p.number % 3]}",
    }
    for k, election in enumerate(OH_ELECTIONS):
        row[election] = "X" if (p.number + k) % 3 else ""
    return row


def _street_parts(street: str) -> tuple[str, str, str, str]:
    """House number, directional, name and suffix of a one-line street address."""
    number, *rest = street.split()
    predir = rest.pop(0) if len(rest) > 2 and rest[0].upper() in DIRECTIONALS else ""
    suffix = rest.pop() if len(rest) > 1 else ""
    return number, predir, " ".join(rest), suffix


def _contra_costa(p: Person, problem: str | None) -> Row:
    number, predir, name, suffix = _street_parts(p.home.street)
    return {
        "RegistrationNumber": str(900_000 + p.number), "VoterID": str(5_000_000 + p.number),
        "LastName": p.last, "FirstName": p.first, "MiddleName": p.middle,
        "ResidenceCity": p.home.city, "ResidenceZipCode": p.home.zip_code,
        "HouseNumber": number, "PreDirection": predir, "StreetName": name,
        # a clerk typed the complex's name into the suffix field
        "StreetSuffix": f"{suffix}, {UNPLACED_TEXT}" if problem == "unplaced" else suffix,
        "UnitAbbr": "APT" if p.home.unit else "", "UnitNumber": p.home.unit or "",
        "RegistrationDate": "02/30/2019" if problem == "bad_date" else _mdy(p.registered),
        "BirthDate": _mdy(p.born), "PartyAbbr": p.party, "PrecinctName": f"CC{100 + p.number % 7}",
    }


def _simple(p: Person, problem: str | None) -> Row:
    street = _street_line(p).title()
    return {
        "first_name": p.first.title(), "last_name": p.last.title(),
        "email": f"{p.first.lower()}.{p.last.lower()}{p.number}@example.org",
        "phone": f"919-555-{p.number:04d}",
        "address": f"{street}, The Oaks" if problem == "unplaced" else street,
        "city": p.home.city.title(), "state": p.home.state, "zip": p.home.zip_code,
    }


# --------------------------------------------------------------------------- files


@dataclass(frozen=True, slots=True)
class _Format:
    layout: Layout
    columns: tuple[str, ...]
    row: Callable[[Person, str | None], Row]
    join: Callable[[list[str]], str]
    encoding: str
    newline: str
    bom: bool = False


def _quoted_tabs(values: list[str]) -> str:
    return "\t".join(f'"{v}"' for v in values)


def _csv(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


FORMATS: dict[str, _Format] = {
    "ncvoter92.txt": _Format(NC_STATEWIDE, NC_STATEWIDE.columns, _nc, _quoted_tabs,
                             "latin-1", "\n"),
    "SWVF_1_22.txt": _Format(OH_SWVF, (*OH_SWVF.columns, *OH_ELECTIONS), _ohio, _csv,
                             "latin-1", "\r\n"),
    "contra_costa_voters.txt": _Format(CONTRA_COSTA, CONTRA_COSTA.columns, _contra_costa,
                                       "\t".join, "utf-8", "\r\n", bom=True),
    "voters.txt": _Format(SIMPLE_CSV, SIMPLE_CSV.columns, _simple, _csv, "utf-8", "\n"),
}


def voter_samples(homes: Sequence[SampleHousehold], seed: int) -> list[VoterSample]:
    """Every layout's file of the people living at ``homes``."""
    people = town_people(homes, seed)
    return [_write(name, fmt, people) for name, fmt in FORMATS.items()]


def _write(name: str, fmt: _Format, people: list[Person]) -> VoterSample:
    # The simple list reads dates when a file has them, but this one has no date column.
    has_dates = bool(fmt.layout.dates) and not fmt.layout.bind
    problems = {UNPLACED_ROW: "unplaced", RAGGED_ROW: "ragged"}
    if has_dates:
        problems[BAD_DATE_ROW] = "bad_date"
    sample = VoterSample(name, fmt.layout.name, b"", 0)
    lines = [fmt.join(list(fmt.columns))]
    for index, person in enumerate(people):
        problem = problems.get(index)
        values = [fmt.row(person, problem).get(column, "") for column in fmt.columns]
        line = index + 2
        if problem == "ragged":
            values = values[:-2]
            sample.errors[line] = "ragged_row"
        elif problem == "bad_date":
            sample.warnings[line] = "bad_date"
        elif problem == "unplaced":
            sample.warnings[line] = "address_unplaced"
        lines.append(fmt.join(values))
    lines.append(fmt.join(_repeated(fmt, people, sample)))
    sample.rows = len(lines) - 1
    text = fmt.newline.join(lines) + fmt.newline
    sample.data = ("\ufeff" if fmt.bom else "").encode(fmt.encoding) + text.encode(fmt.encoding)
    return sample


def _repeated(fmt: _Format, people: list[Person], sample: VoterSample) -> list[str]:
    """The last row: the voter of the first ordinary row again, moved to the
    last person's home (the simple list has no id, so there the same person
    is listed again at the same home, the address spelled another way)."""
    index = next(i for i in range(len(people))
                 if i not in (BAD_DATE_ROW, RAGGED_ROW, UNPLACED_ROW))
    sample.superseded_line, sample.repeated_line = index + 2, len(people) + 2
    voter = people[index]
    if fmt.layout is SIMPLE_CSV:
        row = fmt.row(voter, None)
        row["address"] = row["address"].upper().replace(" ", "  ", 1)
    else:
        moved = Person(voter.number, voter.first, voter.middle, voter.last, people[-1].home,
                       voter.registered, voter.born, voter.party)
        row = fmt.row(moved, None)
    return [row.get(column, "") for column in fmt.columns]
