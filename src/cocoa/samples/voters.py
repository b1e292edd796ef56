"""Seeded voter files in every supported layout, with the mess real files have.

Each generator returns the file bytes together with the ground truth a test
or benchmark needs to score an import: the true household of every voter that
should be imported (the household of its *last* row when an id repeats), the
rows that must be reported as item errors, and the rows that must be imported
with a warning. The same seed always gives the same bytes.

Mess produced (see docs/reference data-formats, "Mess to expect"): Latin-1 /
UTF-8 names (``MUÑOZ``), a UTF-8 BOM, CRLF, blank lines, ragged rows, quotes
inside unquoted fields (mid-field, and opening a field without closing it),
runs of spaces, one address spelled many ways (STREET/ST, NORTH/N,
APT/APARTMENT/#/UNIT), neighbours that differ only by unit or directional,
repeated voter ids (last row wins, often after a move), spreadsheet formulas
and HTML in names, bad dates and missing ids.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from cocoa.domain.voter_files import CONTRA_COSTA, NC_STATEWIDE, OH_SWVF, SIMPLE_CSV

FIRST_NAMES = (
    "JAMES", "MARY", "JOHN", "PATRICIA", "ROBERT", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
    "ELIZABETH", "WILLIAM", "BARBARA", "JOSÉ", "MARÍA", "ZOË", "RENÉE", "ANDRÉ", "LUCÍA",
    "KEISHA", "DESHAWN", "NGUYEN", "PRIYA", "AHMED", "FRANÇOIS",
)
LAST_NAMES = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCÍA", "MILLER", "DAVIS", "MUÑOZ",
    "PEÑA", "NÚÑEZ", "RODRÍGUEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE",
    "JACKSON", "MARTIN", "LEE", "THOMPSON", "WHITE", "HARRIS", "CLARK", "LEWIS", "ROBINSON",
)
STREETS = (
    "OAK", "MAPLE", "CEDAR", "ELM", "PINE", "WASHINGTON", "LINCOLN", "JEFFERSON", "FRANKLIN",
    "MADISON", "WALNUT", "CHESTNUT", "HICKORY", "DOGWOOD", "MAGNOLIA", "SYCAMORE", "WILLOW",
    "BIRCH", "POPLAR", "SPRUCE", "LAUREL", "HOLLY", "ASPEN", "JUNIPER", "MAIN", "CHURCH",
)
SUFFIXES = (("ST", "STREET"), ("AVE", "AVENUE"), ("RD", "ROAD"), ("DR", "DRIVE"),
            ("LN", "LANE"), ("CT", "COURT"), ("BLVD", "BOULEVARD"), ("PL", "PLACE"),
            ("CIR", "CIRCLE"), ("TER", "TERRACE"))
DIRECTIONS = {"N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST"}
OPPOSITE = {"N": "S", "S": "N", "E": "W", "W": "E"}
UNIT_DESIGNATORS = ("APT", "APARTMENT", "#", "UNIT")
FORMULA = '=HYPERLINK("http://evil.example/x","click")'
HTML = "<script>alert(1)</script>"

MESS_KINDS = ("blank_line", "ragged_short", "ragged_long", "missing_id", "bad_date",
              "formula", "html", "quote_mid", "quote_open", "duplicate_id")


@dataclass(frozen=True, slots=True)
class Place:
    """One true residence (the ground-truth household)."""

    number: str
    predir: str
    street: str
    suffix: int  # index into SUFFIXES
    postdir: str
    unit: str
    city: str
    zip_code: str

    @property
    def label(self) -> str:
        return (f"{self.number} {self.predir} {self.street} {SUFFIXES[self.suffix][0]} "
                f"{self.postdir} #{self.unit} {self.zip_code}")


@dataclass(slots=True)
class GeneratedFile:
    """A generated voter file and what a correct import of it must produce.

    ``households`` and ``names`` are keyed by ``key_field`` (the voter id, or
    the email for simple CSV, which has no id). ``errors`` are the rows that
    must be rejected (row number → code), ``warnings`` rows imported with a
    warning. Row numbers are physical lines (header = 1).
    """

    layout: str
    data: bytes
    rows: int
    key_field: str
    households: dict[str, str] = field(default_factory=dict)
    names: dict[str, tuple[str, str]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    warnings: dict[int, str] = field(default_factory=dict)
    mess: dict[str, int] = field(default_factory=dict)  # kind -> rows carrying it


@dataclass(slots=True)
class _Person:
    key: str  # voter id (or email)
    first: str
    last: str
    place: Place
    row_fields: dict[str, str] = field(default_factory=dict)


class _Writer:
    """Accumulates lines and the ground truth while a generator runs."""

    def __init__(self, layout: str, key_field: str, rng: random.Random, mess_rate: float,
                 n_rows: int) -> None:
        self.rng = rng
        self.lines: list[str] = []
        self.out = GeneratedFile(layout, b"", 0, key_field)
        self.line_no = 1  # the header
        self.valid: list[_Person] = []
        # Keys derived from name + address (no id column): a repeated person's
        # earlier row is reported with a ``same_voter_key`` warning (issue 17).
        self.derived_keys = False
        self.last_row: dict[str, int] = {}
        # Every kind at least once (when there is any mess), at seeded positions.
        slots = rng.sample(range(n_rows), min(n_rows, len(MESS_KINDS))) if mess_rate else []
        self.forced = dict(zip(slots, MESS_KINDS, strict=False))
        self.mess_rate = mess_rate

    def kind_for(self, index: int, allowed: tuple[str, ...]) -> str | None:
        kind = self.forced.get(index)
        if kind is None and self.rng.random() < self.mess_rate:
            kind = self.rng.choice(MESS_KINDS)
        if kind is None or kind not in allowed:
            return None
        if kind == "duplicate_id" and not self.valid:
            return None
        self.out.mess[kind] = self.out.mess.get(kind, 0) + 1
        return kind

    def blank(self, text: str) -> None:
        self.lines.append(text)
        self.line_no += 1

    def row(self, text: str, error: str | None = None, warning: str | None = None,
            person: _Person | None = None) -> None:
        self.lines.append(text)
        self.line_no += 1
        self.out.rows += 1
        if error:
            self.out.errors[self.line_no] = error
            return
        if warning:
            self.out.warnings[self.line_no] = warning
        if person is not None:
            if self.derived_keys and person.key in self.last_row:
                self.out.warnings[self.last_row[person.key]] = "same_voter_key"
            self.last_row[person.key] = self.line_no
            self.out.households[person.key] = person.place.label
            self.out.names[person.key] = (" ".join(person.first.split()),
                                          " ".join(person.last.split()))

    def finish(self, header: str, encoding: str, bom: bool, crlf: bool) -> GeneratedFile:
        newline = "\r\n" if crlf else "\n"
        text = newline.join([header, *self.lines]) + newline
        self.out.data = (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)
        return self.out


# --------------------------------------------------------------------------- places


def _places(rng: random.Random, n: int) -> list[Place]:
    """Residences, with deliberate near-twins: the same building with another
    unit, and the same number and street with the opposite directional."""
    zips = [(f"27{rng.randint(100, 999)}", rng.choice(("DURHAM", "RALEIGH", "CARY", "APEX")))
            for _ in range(12)]
    places: list[Place] = []
    while len(places) < n:
        zip_code, city = rng.choice(zips)
        place = Place(
            number=str(rng.randint(1, 9999)),
            predir=rng.choice(("N", "S", "E", "W")) if rng.random() < 0.3 else "",
            street=rng.choice(STREETS), suffix=rng.randrange(len(SUFFIXES)),
            postdir=rng.choice(("N", "S", "E", "W")) if rng.random() < 0.04 else "",
            unit=_unit(rng) if rng.random() < 0.3 else "", city=city, zip_code=zip_code,
        )
        places.append(place)
        if place.unit and rng.random() < 0.4:
            places.append(_replace_unit(place, rng))
        if place.predir and rng.random() < 0.3:
            places.append(_flip_direction(place))
    return places


def _unit(rng: random.Random) -> str:
    return rng.choice((str(rng.randint(1, 40)), f"{rng.randint(1, 9)}{rng.choice('ABCD')}",
                       rng.choice("ABCDEF")))


def _replace_unit(place: Place, rng: random.Random) -> Place:
    unit = _unit(rng)
    while unit == place.unit:
        unit = _unit(rng)
    return Place(place.number, place.predir, place.street, place.suffix, place.postdir, unit,
                 place.city, place.zip_code)


def _flip_direction(place: Place) -> Place:
    return Place(place.number, OPPOSITE[place.predir], place.street, place.suffix,
                 place.postdir, place.unit, place.city, place.zip_code)


def _direction(rng: random.Random, d: str) -> str:
    return DIRECTIONS[d] if d and rng.random() < 0.5 else d


def _street_parts(rng: random.Random, p: Place) -> list[str]:
    """House number to post-directional, each word in a random USPS spelling."""
    suffix = SUFFIXES[p.suffix][rng.random() < 0.5]
    return [p.number, _direction(rng, p.predir), p.street, suffix, _direction(rng, p.postdir)]


def _unit_text(rng: random.Random, unit: str) -> str:
    if not unit:
        return ""
    designator = rng.choice(UNIT_DESIGNATORS)
    if designator == "#" and rng.random() < 0.5:
        return f"#{unit}"
    return f"{designator} {unit}"


def _spaced(rng: random.Random, parts: list[str], runs: bool) -> str:
    words = [w for w in parts if w]
    if not runs:
        return " ".join(words)
    return "".join(w + (" " * rng.choice((1, 1, 2, 3))) for w in words).rstrip()


def _names(rng: random.Random, kind: str | None) -> tuple[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    if kind == "formula":
        first = FORMULA
    elif kind == "html":
        last = HTML
    elif kind == "quote_mid":
        last = 'O"NEIL'
    return first, last


# --------------------------------------------------------------------------- layouts


def _csv_field(value: str, delimiter: str) -> str:
    if delimiter in value or (value.startswith('"') and value.endswith('"')):
        return '"' + value.replace('"', '""') + '"'
    return value


def _ragged(values: list[str], kind: str) -> list[str]:
    if kind == "ragged_short":
        return values[:-2]
    return [*values, "EXTRA"]


def _emit(w: _Writer, values: list[str], kind: str | None, person: _Person,
          join: Callable[[list[str]], str], open_quote_warns: bool) -> None:
    """Write one data row carrying ``kind`` and record its expected outcome.

    ``open_quote_warns``: in CSV-quoted layouts a value that opens a quote
    without closing it is kept as data with a ``stray_quote`` warning; in the
    tab layouts it is plain data.
    """
    if kind == "blank_line":
        w.blank(w.rng.choice(("", "   ", join([""] * len(values)))))
    if kind in ("ragged_short", "ragged_long"):
        w.row(join(_ragged(values, kind)), error="ragged_row")
    elif kind == "missing_id":
        w.row(join(values), error="missing_id")
    else:
        warning = "bad_date" if kind == "bad_date" else None
        if open_quote_warns and any(v.startswith('"') and not v.endswith('"') for v in values):
            warning = "stray_quote"
        w.row(join(values), warning=warning, person=person)
        w.valid.append(person)


def _person(w: _Writer, kind: str | None, places: list[Place], new_id: Callable[[], str],
            ) -> _Person:
    """A new voter, or (duplicate_id) an earlier one seen again after a move."""
    if kind == "duplicate_id":
        earlier = w.rng.choice(w.valid)
        first, last = _names(w.rng, None)
        return _Person(earlier.key, first, last, w.rng.choice(places))
    first, last = _names(w.rng, kind)
    return _Person("" if kind == "missing_id" else new_id(), first, last,
                   w.rng.choice(places))


def generate_nc(n_rows: int = 1000, seed: int = 0, *, encoding: str = "latin-1",
                bom: bool = False, crlf: bool = False, mess_rate: float = 0.02,
                ) -> GeneratedFile:
    """North Carolina statewide: tab, every field quoted, Latin-1, free-form
    address line with runs of spaces and the unit inline."""
    rng = random.Random(seed)
    w = _Writer(NC_STATEWIDE.name, "external_id", rng, mess_rate, n_rows)
    places = _places(rng, max(4, n_rows // 2))
    cols = NC_STATEWIDE.columns
    pos = {c: i for i, c in enumerate(cols)}
    template = [f"{c[:6].upper()}" for c in cols]
    counter = iter(range(1, 10**9))

    def join(values: list[str]) -> str:
        return "\t".join(f'"{v}"' for v in values)

    for i in range(n_rows):
        kind = w.kind_for(i, MESS_KINDS)
        person = _person(w, kind, places, lambda: f"AB{next(counter):07d}")
        p = person.place
        values = list(template)
        street = _spaced(rng, [*_street_parts(rng, p), _unit_text(rng, p.unit)], runs=True)
        values[pos["ncid"]] = person.key
        values[pos["voter_reg_num"]] = str(i + 1)
        values[pos["first_name"]] = person.first.replace('"', '""') if kind == "formula" \
            else person.first
        values[pos["last_name"]] = person.last
        values[pos["middle_name"]] = rng.choice(("", "ANN", "LEE", "MARIE"))
        values[pos["name_suffix_lbl"]] = ""
        values[pos["status_cd"]] = rng.choice("AAAAIDRS")
        values[pos["res_street_address"]] = street
        values[pos["res_city_desc"]] = p.city
        values[pos["state_cd"]] = "NC"
        values[pos["zip_code"]] = p.zip_code
        for c in ("mail_addr1", "mail_addr2", "mail_addr3", "mail_addr4", "mail_city",
                  "mail_state", "mail_zipcode"):
            values[pos[c]] = ""
        values[pos["registr_dt"]] = ("02/30/2019" if kind == "bad_date" else
                                     f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/"
                                     f"{rng.randint(1970, 2024)}")
        values[pos["birth_year"]] = str(rng.randint(1930, 2006))
        values[pos["party_cd"]] = rng.choice(("DEM", "REP", "UNA", "LIB"))
        if kind == "quote_open":
            values[pos["middle_name"]] = '"JACK'
        _emit(w, values, kind, person, join, open_quote_warns=False)
    return w.finish("\t".join(f'"{c}"' for c in cols), encoding, bom, crlf)


OH_ELECTIONS = ("PRIMARY-03/07/2000", "GENERAL-11/07/2000", "PRIMARY-05/08/2018",
                "GENERAL-11/06/2018", "GENERAL-11/03/2020")


def generate_ohio(n_rows: int = 1000, seed: int = 0, *, encoding: str = "latin-1",
                  bom: bool = False, crlf: bool = True, mess_rate: float = 0.02,
                  elections: tuple[str, ...] = OH_ELECTIONS) -> GeneratedFile:
    """Ohio SWVF: comma CSV, Latin-1, CRLF, unit in its own column, election
    history columns after the documented ones."""
    rng = random.Random(seed)
    w = _Writer(OH_SWVF.name, "external_id", rng, mess_rate, n_rows)
    places = _places(rng, max(4, n_rows // 2))
    cols = (*OH_SWVF.columns, *elections)
    pos = {c: i for i, c in enumerate(cols)}
    counter = iter(range(1, 10**9))

    def join(values: list[str]) -> str:
        return ",".join(_csv_field(v, ",") for v in values)

    for i in range(n_rows):
        kind = w.kind_for(i, MESS_KINDS)
        person = _person(w, kind, places, lambda: f"OH{next(counter):010d}")
        p = person.place
        values = [""] * len(cols)
        values[pos["SOS_VOTERID"]] = person.key
        values[pos["COUNTY_NUMBER"]] = str(rng.randint(1, 88))
        values[pos["FIRST_NAME"]] = person.first
        values[pos["LAST_NAME"]] = person.last
        values[pos["MIDDLE_NAME"]] = '"JACK' if kind == "quote_open" else ""
        values[pos["DATE_OF_BIRTH"]] = (f"{rng.randint(1930, 2006)}-{rng.randint(1, 12):02d}-"
                                        f"{rng.randint(1, 28):02d}")
        values[pos["REGISTRATION_DATE"]] = "2019-02-30" if kind == "bad_date" else "2016-10-01"
        values[pos["VOTER_STATUS"]] = rng.choice(("ACTIVE", "CONFIRMATION"))
        values[pos["PARTY_AFFILIATION"]] = rng.choice(("D", "R", ""))
        values[pos["RESIDENTIAL_ADDRESS1"]] = _spaced(rng, _street_parts(rng, p), runs=False)
        values[pos["RESIDENTIAL_SECONDARY_ADDR"]] = _unit_text(rng, p.unit)
        values[pos["RESIDENTIAL_CITY"]] = p.city
        values[pos["RESIDENTIAL_STATE"]] = "OH"
        values[pos["RESIDENTIAL_ZIP"]] = p.zip_code
        values[pos["RESIDENTIAL_ZIP_PLUS4"]] = str(rng.randint(1000, 9999))
        values[pos["PRECINCT_NAME"]] = f"PRECINCT {rng.choice('ABCDEFG')}"
        for e in elections:
            values[pos[e]] = rng.choice(("", "", "X", "D", "R"))
        _emit(w, values, kind, person, join, open_quote_warns=True)
    return w.finish(",".join(cols), encoding, bom, crlf)


def generate_contra_costa(n_rows: int = 1000, seed: int = 0, *, encoding: str = "utf-8",
                          bom: bool = True, crlf: bool = True, mess_rate: float = 0.02,
                          ) -> GeneratedFile:
    """Contra Costa: tab, unquoted, UTF-8 with BOM and CRLF, structured address
    columns (each part spelled either way)."""
    rng = random.Random(seed)
    w = _Writer(CONTRA_COSTA.name, "external_id", rng, mess_rate, n_rows)
    places = _places(rng, max(4, n_rows // 2))
    cols = CONTRA_COSTA.columns
    pos = {c: i for i, c in enumerate(cols)}
    counter = iter(range(1, 10**9))

    def join(values: list[str]) -> str:
        return "\t".join(values)

    for i in range(n_rows):
        kind = w.kind_for(i, MESS_KINDS)
        person = _person(w, kind, places, lambda: str(next(counter) + 5_000_000))
        p = person.place
        values = [""] * len(cols)
        number, predir, street, suffix, postdir = _street_parts(rng, p)
        designator = rng.choice(UNIT_DESIGNATORS) if p.unit else ""
        values[pos["VoterID"]] = person.key
        values[pos["FirstName"]] = person.first
        values[pos["LastName"]] = person.last
        values[pos["MiddleName"]] = '"JACK' if kind == "quote_open" else ""
        for col, value in (("HouseNumber", number), ("PreDirection", predir),
                           ("StreetName", street), ("StreetSuffix", suffix),
                           ("PostDirection", postdir), ("UnitAbbr", designator),
                           ("UnitNumber", p.unit), ("ResidenceCity", p.city),
                           ("ResidenceZipCode", p.zip_code)):
            values[pos[col]] = value
        values[pos["RegistrationDate"]] = "13/45/2020" if kind == "bad_date" else "03/15/2012"
        values[pos["BirthDate"]] = f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/1970"
        values[pos["PartyAbbr"]] = rng.choice(("DEM", "REP", "NPP"))
        values[pos["PrecinctName"]] = f"CC{rng.randint(100, 999)}"
        _emit(w, values, kind, person, join, open_quote_warns=False)
    return w.finish("\t".join(cols), encoding, bom, crlf)


SIMPLE_KINDS = ("blank_line", "ragged_short", "ragged_long", "formula", "html", "quote_mid",
                "quote_open", "duplicate_id")


def generate_simple(n_rows: int = 200, seed: int = 0, *, encoding: str = "utf-8",
                    bom: bool = True, crlf: bool = True, mess_rate: float = 0.02,
                    header: tuple[str, ...] = ("FirstName", "LastName", "Email", "Phone",
                                               "Address", "City", "State", "Zip"),
                    ) -> GeneratedFile:
    """A hand-made list: no voter id, header spelled ``FirstName``. A repeated
    person (``duplicate_id``) is the same name at the same residence with the
    address spelled differently, which must stay one voter. Truth is keyed by
    email (unique per person)."""
    rng = random.Random(seed)
    w = _Writer(SIMPLE_CSV.name, "email", rng, mess_rate, n_rows)
    w.derived_keys = True
    places = _places(rng, max(4, n_rows // 2))
    taken: set[tuple[str, str, str]] = set()
    people: dict[str, _Person] = {}

    def join(values: list[str]) -> str:
        return ",".join(_csv_field(v, ",") for v in values)

    for i in range(n_rows):
        kind = w.kind_for(i, SIMPLE_KINDS)
        if kind == "duplicate_id":
            person = people[rng.choice(w.valid).key]
        else:
            person = _new_simple_person(rng, kind, places, taken, i)
            people[person.key] = person
        p = person.place
        street = _spaced(rng, [*_street_parts(rng, p), _unit_text(rng, p.unit)], runs=True)
        if rng.random() < 0.3:
            street = street.title()
        values = [person.first, person.last, person.key, f"919-555-{rng.randint(0, 9999):04d}",
                  street, p.city.title(), "NC", p.zip_code]
        _emit(w, values, kind, person, join, open_quote_warns=True)
    return w.finish(",".join(header), encoding, bom, crlf)


def _new_simple_person(rng: random.Random, kind: str | None, places: list[Place],
                       taken: set[tuple[str, str, str]], i: int) -> _Person:
    while True:
        first, last = _names(rng, kind)
        if kind == "quote_open":
            first = '"JACK'
        place = rng.choice(places)
        if (first, last, place.label) not in taken:
            taken.add((first, last, place.label))
            return _Person(f"person{i}@example.org", first, last, place)


GENERATORS: dict[str, Callable[..., GeneratedFile]] = {
    NC_STATEWIDE.name: generate_nc,
    OH_SWVF.name: generate_ohio,
    CONTRA_COSTA.name: generate_contra_costa,
    SIMPLE_CSV.name: generate_simple,
}


def generate(layout: str, n_rows: int = 1000, seed: int = 0, **options: object,
             ) -> GeneratedFile:
    """Generate a file in ``layout`` (demo and benchmark entry point)."""
    return GENERATORS[layout](n_rows, seed, **options)
