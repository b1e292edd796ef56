"""Property: every way people write one door gives that door's key (issue 15).

Hypothesis draws a door (house number, directionals, street name, suffix,
unit) and writes it the ways voter files do: any case, runs of spaces,
periods after abbreviations, commas, the unit designator as APT / APARTMENT /
# / UNIT / STE (glued, with "#", with "No."), suffix and directionals
abbreviated or spelled out, ordinal names as words or numbers, the unit
after the street, after a comma, before it (with or without a comma), in a
unit column of its own or without a designator, and the city/state/ZIP after
a comma or not. Every spelling must give the key computed from the door
itself; another unit identifier or house number must give another key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from cocoa.domain.addresses import household_key, normalize_address, unplaced_part

# Street names with their spellings (ordinals as a word or a number).
NAMES = {
    "MAIN": ["MAIN"], "OAK": ["OAK"], "MAPLE": ["MAPLE"], "CEDAR": ["CEDAR"],
    "HICKORY": ["HICKORY"], "WASHINGTON": ["WASHINGTON"], "OLD STAGE": ["OLD STAGE"],
    "MARTIN LUTHER KING JR": ["MARTIN LUTHER KING JR"], "5TH": ["5TH", "FIFTH"],
    "21ST": ["21ST", "TWENTY-FIRST", "TWENTYFIRST"], "2ND": ["2ND", "SECOND"],
}
# Publication 28 C1: the standard abbreviation and spellings seen in the wild.
SUFFIXES = {
    "ST": ["ST", "STREET", "STR", "STRT"], "AVE": ["AVE", "AVENUE", "AV", "AVEN"],
    "RD": ["RD", "ROAD"], "DR": ["DR", "DRIVE", "DRV"], "LN": ["LN", "LANE"],
    "CT": ["CT", "COURT"], "BLVD": ["BLVD", "BOULEVARD", "BOUL"], "PL": ["PL", "PLACE"],
    "CIR": ["CIR", "CIRCLE"], "TER": ["TER", "TERRACE"], "PKWY": ["PKWY", "PARKWAY"],
    "TRL": ["TRL", "TRAIL"], "WAY": ["WAY"],
}
DIRECTIONS = {
    "N": ["N", "NORTH"], "S": ["S", "SOUTH"], "E": ["E", "EAST"], "W": ["W", "WEST"],
    "NE": ["NE", "NORTHEAST"], "NW": ["NW", "NORTHWEST"], "SE": ["SE", "SOUTHEAST"],
    "SW": ["SW", "SOUTHWEST"],
}
DESIGNATORS = ["APT", "APARTMENT", "#", "UNIT", "STE", "SUITE"]
CITIES = [("RALEIGH", "27601"), ("WINSTON-SALEM", "27101"), ("ST. LOUIS", "63101"),
          ("NORTH CHARLESTON", "29405")]


@dataclass(frozen=True)
class Door:
    number: str
    predir: str
    name: str
    suffix: str
    postdir: str
    unit: str  # canonical identifier: "4", "4B", "B", "B12", "3-12"; "" for none
    city: int

    @property
    def key(self) -> str:
        """The key this door must get, built from its parts, not parsed."""
        street = " ".join(p for p in (self.number, self.predir, self.name, self.suffix,
                                      self.postdir) if p)
        return f"{street} #{self.unit}" if self.unit else street


# Unit identifiers people type: a number, number + letter, a letter (not one
# that reads as a directional), letter + number, a range of two numbers.
unit_ids = st.one_of(
    st.integers(1, 999).map(str),
    st.tuples(st.integers(1, 40), st.sampled_from("ABCDFGH")).map(lambda t: f"{t[0]}{t[1]}"),
    st.sampled_from("ABCDFGH"),
    st.tuples(st.sampled_from("ABCD"), st.integers(1, 40)).map(lambda t: f"{t[0]}{t[1]}"),
    st.tuples(st.integers(1, 9), st.integers(1, 40)).map(lambda t: f"{t[0]}-{t[1]}"),
)

doors = st.builds(
    Door,
    number=st.integers(1, 99999).map(str),
    predir=st.one_of(st.just(""), st.sampled_from(sorted(DIRECTIONS))),
    name=st.sampled_from(sorted(NAMES)),
    suffix=st.sampled_from(sorted(SUFFIXES)),
    postdir=st.one_of(st.just(""), st.just(""), st.sampled_from(sorted(DIRECTIONS))),
    unit=st.one_of(st.just(""), unit_ids),
    city=st.integers(0, len(CITIES) - 1),
)


@st.composite
def spellings(draw: st.DrawFn, door: Door) -> tuple[str, str | None]:
    """One way of writing ``door``: (street line, unit column or None)."""

    def word(text: str, abbreviation: bool = False) -> str:
        case = draw(st.sampled_from(["upper", "lower", "title"]))
        text = {"upper": text.upper(), "lower": text.lower(), "title": text.title()}[case]
        if abbreviation and draw(st.booleans()):
            text += "."
        return text

    def gap() -> str:
        return " " * draw(st.integers(1, 3))

    parts = [door.number]
    if door.predir:
        parts.append(word(draw(st.sampled_from(DIRECTIONS[door.predir])), abbreviation=True))
    parts.append(word(draw(st.sampled_from(NAMES[door.name]))))
    parts.append(word(draw(st.sampled_from(SUFFIXES[door.suffix])), abbreviation=True))
    if door.postdir:
        parts.append(word(draw(st.sampled_from(DIRECTIONS[door.postdir])), abbreviation=True))
    street = gap().join(parts)

    unit_column: str | None = None
    line = street
    if door.unit:
        unit_text = _unit_text(draw, door.unit, word)
        place = draw(st.sampled_from(["after", "after comma", "before", "before comma",
                                      "column", "bare"]))
        if place == "after":
            line = f"{street}{gap()}{unit_text}"
        elif place == "after comma":
            line = f"{street},{gap()}{unit_text}"
        elif place == "before":
            line = f"{unit_text}{gap()}{street}"
        elif place == "before comma":
            line = f"{unit_text},{gap()}{street}"
        elif place == "column":
            unit_column = draw(st.sampled_from([unit_text, door.unit]))
        else:  # no designator at all, after a complete street
            separator = draw(st.sampled_from([" ", ", ", " - "]))
            line = f"{street}{separator}{_id_spelling(draw, door.unit)}"
    city, zip_code = CITIES[door.city]
    tail = draw(st.sampled_from(["", ",", f", {city}, NC {zip_code}", f", {city} NC",
                                 f", {city}, NC, {zip_code}-1234"]))
    return line + tail, unit_column


def _id_spelling(draw: st.DrawFn, unit: str) -> str:
    """``4B`` is also typed ``4-B`` and ``4 B``."""
    if len(unit) >= 2 and unit[0].isdigit() and unit[-1].isalpha():
        return draw(st.sampled_from([unit, f"{unit[:-1]}-{unit[-1]}", f"{unit[:-1]} {unit[-1]}"]))
    return unit


def _unit_text(draw: st.DrawFn, unit: str, word: Callable[..., str]) -> str:
    designator = draw(st.sampled_from(DESIGNATORS))
    ident = _id_spelling(draw, unit)
    if designator == "#":
        return draw(st.sampled_from([f"#{ident}", f"# {ident}"]))
    text = word(designator, abbreviation=designator != "APARTMENT")
    form = draw(st.sampled_from(["space", "glued", "hash", "no"]))
    if form == "glued" and ident[0].isdigit() and designator in ("APT", "STE", "UNIT"):
        return f"{text.rstrip('.')}{ident.replace(' ', '')}"  # "APT4B", "APT4-B"
    if form == "hash":
        return f"{text} #{ident}"
    if form == "no":
        return f"{text} No. {ident}"
    return f"{text} {ident}"


@settings(max_examples=600, deadline=None)
@given(st.data(), doors)
def test_every_spelling_of_a_door_gives_its_key(data: st.DataObject, door: Door) -> None:
    line, unit = data.draw(spellings(door), label="spelling")
    parsed = normalize_address(line, unit)
    assert parsed.key == door.key
    assert parsed.unplaced == ""
    # What an import stores reads back as the same door.
    assert normalize_address(parsed.street_line, parsed.unit or None).key == door.key


@settings(max_examples=300, deadline=None)
@given(st.data(), doors)
def test_two_spellings_share_one_household(data: st.DataObject, door: Door) -> None:
    city, zip_code = CITIES[door.city]
    first, first_unit = data.draw(spellings(door), label="first")
    second, second_unit = data.draw(spellings(door), label="second")
    assert household_key(first, city, "NC", zip_code, first_unit) == household_key(
        second, city.title(), "nc", f"{zip_code}-0001", second_unit)


@settings(max_examples=300, deadline=None)
@given(st.data(), doors, unit_ids, st.integers(1, 99999))
def test_another_unit_or_number_is_another_door(data: st.DataObject, door: Door, other_unit: str,
                                                 other_number: int) -> None:
    line, unit = data.draw(spellings(door), label="door")
    key = normalize_address(line, unit).key
    if other_unit != door.unit:
        neighbour = replace(door, unit=other_unit)
        other_line, other_column = data.draw(spellings(neighbour), label="other unit")
        assert normalize_address(other_line, other_column).key != key
    if str(other_number) != door.number:
        across = replace(door, number=str(other_number))
        other_line, other_column = data.draw(spellings(across), label="other number")
        assert normalize_address(other_line, other_column).key != key


_WORDS = st.sampled_from([
    "12", "4B", "APT", "#", "REAR", "3RD", "FLOOR", "N", "MAIN", "ST", "-", "B", "RALEIGH",
    "NC", "27601", "THE", "OAKS", "UNIT", "W152", "N8945", "ONE", "LEVEL", "PO", "BOX",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_WORDS, st.sampled_from([",", ";"])), max_size=10).map(" ".join),
       st.one_of(st.none(), st.lists(_WORDS, max_size=3).map(" ".join)))
def test_only_text_after_a_comma_can_be_unplaced(line: str, unit: str | None) -> None:
    """The importer asks for unplaced text only when the line has a comma
    (``unplaced_part``'s shortcut): any other line must have none."""
    parsed = normalize_address(line, unit)
    if "," not in line and ";" not in line:
        assert parsed.unplaced == ""
    assert unplaced_part(line, unit) == parsed.unplaced
    assert parsed.key.count(" #") <= 1 and "|" not in parsed.key
