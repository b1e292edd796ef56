"""The household key on addresses as people write them (issue 15), class by class.

Each row is ``(as written, the key it must get)``; the key is
``NormalizedAddress.key``: the USPS Publication 28 street line without the unit
designator, then `` #`` and the unit identifier. The expectations come from
Publication 28 (appendix C1 suffixes, C2 secondary unit designators, the
"secondary range not required" designators that are their own identifier) and
from how the same door is really written in voter files, not from the
parser's output. Two spellings of one door must share a key; two doors must
never share one (``APT 2`` and ``FL 2`` are different: a floor keeps its
``FL``).
"""

from __future__ import annotations

import io

import pytest
from tests.unit.voter_rows import iter_rows

from cocoa.domain.addresses import (
    building_household_key,
    household_key,
    normalize_address,
    street_parts,
    unplaced_part,
)
from cocoa.domain.voter_files import (
    RowIssue,
    RowReader,
    VoterRecord,
    inspect_file,
    read_header_line,
    resolve_layout,
)

# 1. A comma before the unit must not drop it.
COMMA_UNIT = [
    ("111 W Elm St, 12C", "111 W ELM ST #12C"),
    ("40 Oak Ave, #3", "40 OAK AVE #3"),
    ("18 Second St, 3rd Floor", "18 2ND ST #FL3"),
    ("221 Baker St, Apt B", "221 BAKER ST #B"),
    ("9 Elm St., Unit 5", "9 ELM ST #5"),
    ("500 Pine St, Suite 200", "500 PINE ST #200"),
    ("12 Oak Ln, Bldg 2, Apt 14", "12 OAK LN #2-14"),
    ("350 5th Ave, Fl 34", "350 5TH AVE #FL34"),
    ("1600 Pennsylvania Ave NW, Rear", "1600 PENNSYLVANIA AVE NW #REAR"),
    ("8 Maple Ct, B", "8 MAPLE CT #B"),
    ("8 Maple Ct, 2", "8 MAPLE CT #2"),
    ("45 Water St , # 6", "45 WATER ST #6"),
    ("100 Main St,Apt 4", "100 MAIN ST #4"),
    ("100 Main St; Apt 4", "100 MAIN ST #4"),
    ("100 Main St, Apt. 4-B", "100 MAIN ST #4B"),
    ("100 Main St, Ste E", "100 MAIN ST #E"),
    ("100 Main St, PH", "100 MAIN ST #PH"),
    ("100 Main St, Lot 17", "100 MAIN ST #17"),
    ("100 Main St, Space 9", "100 MAIN ST #9"),
    ("100 Main St, 2nd Fl", "100 MAIN ST #FL2"),
    ("100 Main St, Apt 4, Apt 4", "100 MAIN ST #4-4"),  # kept: nothing is dropped
    ("77 Massachusetts Ave, Rm 4-123", "77 MASSACHUSETTS AVE #4-123"),
    ("100 Broadway, Apt 4", "100 BROADWAY #4"),
    ("100 Broadway, 12C", "100 BROADWAY #12C"),
    ("100 N Broadway, Rear", "100 N BROADWAY #REAR"),
    ("PO Box 12, Apt 3", "PO BOX 12 APT 3"),
    ("RR 2, Box 5", "RR 2 BOX 5"),
]

# 2. Text after a comma is never dropped: placed (post-directional, unit,
# city/state/ZIP) or kept in the key as unplaced text.
AFTER_COMMA = [
    ("1800 K St, NW Ste 700", "1800 K ST NW #700"),
    ("1800 K St NW, Suite 700", "1800 K ST NW #700"),
    ("1800 K St NW Suite 700", "1800 K ST NW #700"),
    ("1800 K St, NW", "1800 K ST NW"),
    ("1800 K St, Northwest", "1800 K ST NW"),
    ("1800 K St, NW, Washington, DC 20006", "1800 K ST NW"),
    ("123 Main St, Raleigh, NC 27601", "123 MAIN ST"),
    ("123 Main St, Raleigh NC 27601-1234", "123 MAIN ST"),
    ("123 Main St, Raleigh, NC, 27601", "123 MAIN ST"),
    ("123 Main St, Raleigh, NC", "123 MAIN ST"),
    ("123 Main St, Raleigh NC", "123 MAIN ST"),
    ("123 Main St Apt 4, Raleigh, NC 27601", "123 MAIN ST #4"),
    ("123 Main St, Apt 4, Raleigh, NC 27601", "123 MAIN ST #4"),
    ("123 Main St, Winston-Salem, NC 27101", "123 MAIN ST"),
    ("123 Main St, St. Louis, MO 63101", "123 MAIN ST"),
    ("123 Main St, Omaha, NE 68102", "123 MAIN ST"),
    ("123 Main St, Miami, FL 33101", "123 MAIN ST"),
    ("123 Main St, North Charleston, SC 29405", "123 MAIN ST"),
    ("123 Main St, Raleigh", "123 MAIN ST RALEIGH"),
    ("123 Main St, The Oaks", "123 MAIN ST THE OAKS"),
    ("123 Main St, NC", "123 MAIN ST NC"),  # a state with no city: may be a suffix
    ("123 Oak, Ct", "123 OAK CT"),
    ("The Oaks, 123 Main St Apt 4", "123 MAIN ST THE OAKS #4"),
    ("123 Main St Apt 4, Garden Level", "123 MAIN ST GARDEN LEVEL #4"),
    ("123 Main St, Carriage House", "123 MAIN ST CARRIAGE HOUSE"),
]

# 3. Publication 28 C2 designators, floors before or after their number, and
# the designators that need no number (they are the identifier).
DESIGNATORS = [
    ("12 Main St 2nd Floor", "12 MAIN ST #FL2"),
    ("12 Main St Floor 2", "12 MAIN ST #FL2"),
    ("12 Main St Fl 2", "12 MAIN ST #FL2"),
    ("12 Main St Flr 2", "12 MAIN ST #FL2"),
    ("12 Main St FL2", "12 MAIN ST #FL2"),
    ("12 Main St 7TH FLR", "12 MAIN ST #FL7"),
    ("12 Main St Second Floor", "12 MAIN ST #FL2"),
    ("12 Main St 2 Fl", "12 MAIN ST #FL2"),
    ("12 Main St Level 2", "12 MAIN ST #FL2"),
    ("12 Main St 1st Fl Rear", "12 MAIN ST #FL1-REAR"),
    ("12 Main St Fl 3 Apt 2", "12 MAIN ST #FL3-2"),
    ("12 Main St Lower Level", "12 MAIN ST #LOWR"),
    ("12 Main St Lowr", "12 MAIN ST #LOWR"),
    ("12 Main St Downstairs", "12 MAIN ST #LOWR"),
    ("12 Main St Upper", "12 MAIN ST #UPPR"),
    ("12 Main St Upper Level", "12 MAIN ST #UPPR"),
    ("12 Main St Upstairs", "12 MAIN ST #UPPR"),
    ("12 Main St Rear", "12 MAIN ST #REAR"),
    ("12 Main St Rear Apt", "12 MAIN ST #REAR"),
    ("12 Main St Apt Rear", "12 MAIN ST #REAR"),
    ("12 Main St Bsmt", "12 MAIN ST #BSMT"),
    ("12 Main St Basement", "12 MAIN ST #BSMT"),
    ("12 Main St Front", "12 MAIN ST #FRNT"),
    ("12 Main St Frnt", "12 MAIN ST #FRNT"),
    ("12 Main St Side", "12 MAIN ST #SIDE"),
    ("12 Main St Lobby", "12 MAIN ST #LBBY"),
    ("12 Main St Office", "12 MAIN ST #OFC"),
    ("12 Main St Ofc", "12 MAIN ST #OFC"),
    ("12 Main St Penthouse", "12 MAIN ST #PH"),
    ("12 Main St PH 3", "12 MAIN ST #PH3"),
    ("12 Main St Space 4", "12 MAIN ST #4"),
    ("12 Main St Spc 4", "12 MAIN ST #4"),
    ("12 Main St Slip 12", "12 MAIN ST #12"),
    ("12 Main St Pier 39", "12 MAIN ST #39"),
    ("12 Main St Hangar 7", "12 MAIN ST #7"),
    ("12 Main St Hngr 7", "12 MAIN ST #7"),
    ("12 Main St Dept 5", "12 MAIN ST #5"),
    ("12 Main St Department 5", "12 MAIN ST #5"),
    ("12 Main St Key 9", "12 MAIN ST #9"),
    ("12 Main St Trailer 14", "12 MAIN ST #14"),
    ("12 Main St Trlr 14", "12 MAIN ST #14"),
    ("12 Main St Lot 22", "12 MAIN ST #22"),
    ("12 Main St Bldg C", "12 MAIN ST #C"),
    ("12 Main St Building 3", "12 MAIN ST #3"),
    ("12 Main St Ste 300", "12 MAIN ST #300"),
    ("12 Main St Suite 300", "12 MAIN ST #300"),
    ("12 Main St Rm 12", "12 MAIN ST #12"),
    ("12 Main St Room 12", "12 MAIN ST #12"),
    ("12 Main St Unit 7", "12 MAIN ST #7"),
    ("12 Main St Apartment 7", "12 MAIN ST #7"),
    ("12 Main St Stop 3", "12 MAIN ST #3"),
    ("12 Main St Apt 04", "12 MAIN ST #04"),  # leading zeros kept: Pub 28 keeps them
    ("12 Main St Bldg 3A Apt 2", "12 MAIN ST #3A-2"),  # one part per designator:
    ("12 Main St Bldg 3 Apt A2", "12 MAIN ST #3-A2"),  # these are two doors
    ("12 Main St Bldg 3 Apt A", "12 MAIN ST #3-A"),  # and neither is APT 3A
    ("12 Main St Garage Apt", "12 MAIN ST #GARAGE"),
    ("12 Main St Basement Apt", "12 MAIN ST #BSMT"),
    ("12 Main St Apt 2 3rd Fl", "12 MAIN ST #2-FL3"),
    ("100 N Front St", "100 N FRONT ST"),  # FRONT names the street here
    ("100 Lower Mountain Rd", "100 LOWER MOUNTAIN RD"),
    ("100 High Level Rd", "100 HIGH LEVEL RD"),
    ("100 Suite St", "100 SUITE ST"),
    ("100 Old Lot Rd", "100 OLD LOT RD"),
    ("100 Main St Trailer", "100 MAIN ST TRLR"),  # TRAILER as the suffix
]

# 4. A unit without a designator after a complete street.
NO_DESIGNATOR = [
    ("1020 W Elm Ave 211", "1020 W ELM AVE #211"),
    ("55 Pine St 3R", "55 PINE ST #3R"),
    ("12 Oak Ct - B", "12 OAK CT #B"),
    ("12 Oak Ct B", "12 OAK CT #B"),
    ("12 Oak Ct -B", "12 OAK CT #B"),
    ("12 Oak Ct - 4", "12 OAK CT #4"),
    ("300 Park Ave S 12", "300 PARK AVE S #12"),
    ("100 Main St N 4B", "100 MAIN ST N #4B"),
    ("100 Main St E", "100 MAIN ST E"),  # a directional, not unit E
    ("100 W Avenue J", "100 W AVENUE J"),  # a lettered avenue (Lancaster, CA)
    ("100 Avenue B", "100 AVENUE B"),
    ("100 Hwy 54", "100 HWY 54"),  # a route number, not a unit
    ("100 US Hwy 1", "100 US HWY 1"),
    ("100 Cape- Fear Rd", "100 CAPE FEAR RD"),  # a stray hyphen before no unit
]

# 5. A letter or fraction after the house number belongs to the number.
HOUSE_NUMBER_SUFFIX = [
    ("214 B South Blvd", "214B SOUTH BLVD"),
    ("214 B S Blvd", "214B SOUTH BLVD"),
    ("214B South Blvd", "214B SOUTH BLVD"),
    ("214-B South Blvd", "214B SOUTH BLVD"),
    ("214 South Blvd", "214 SOUTH BLVD"),
    ("214 S Blvd", "214 SOUTH BLVD"),
    ("1418 1/2 Elm Ave", "1418 1/2 ELM AVE"),
    ("1418\u00bd Elm Ave", "1418 1/2 ELM AVE"),
    ("1418-1/2 Elm Ave", "1418 1/2 ELM AVE"),
    ("12-B Main St", "12B MAIN ST"),
    ("12 B Main St", "12B MAIN ST"),
    ("12 b main street", "12B MAIN ST"),
    ("214 B St", "214 B ST"),  # B Street
    ("214 B St NW", "214 B ST NW"),
    ("214 B St Apt 4", "214 B ST #4"),
    ("214 B St 4", "214 B ST #4"),
    ("214 E Main St", "214 E MAIN ST"),
    ("12-14 Main St", "12-14 MAIN ST"),  # a range stays a range
    ("123-45 67th Ave", "123-45 67TH AVE"),  # Queens
]

# 6. The unit written first.
UNIT_FIRST = [
    ("Apt 4, 10 Main St", "10 MAIN ST #4"),
    ("Unit 204 318 N Oak St", "318 N OAK ST #204"),
    ("#4 10 Main St", "10 MAIN ST #4"),
    ("# 4, 10 Main St", "10 MAIN ST #4"),
    ("Apt 4B 123 Main St", "123 MAIN ST #4B"),
    ("Rear 12 Oak St", "12 OAK ST #REAR"),
    ("Ste 100, 500 Main St", "500 MAIN ST #100"),
    ("2nd Floor, 12 Main St", "12 MAIN ST #FL2"),
    ("Bldg 2 Apt 5 100 Main St", "100 MAIN ST #2-5"),
    ("APT4B 123 MAIN ST", "123 MAIN ST #4B"),
]

# 7. House numbers that do not start with a digit.
OTHER_NUMBERS = [
    ("N62W14123 Alpine Dr", "N62W14123 ALPINE DR"),
    ("N62 W14123 Alpine Dr", "N62W14123 ALPINE DR"),
    ("W152 N8945 Maple Ln", "W152N8945 MAPLE LN"),
    ("W152N8945 Maple Ln", "W152N8945 MAPLE LN"),
    ("w152n8945 maple lane", "W152N8945 MAPLE LN"),
    ("One N Main St", "1 N MAIN ST"),
    ("One North Main Street", "1 N MAIN ST"),
    ("Two Penn Plaza", "2 PENN PLZ"),
    ("One Main St Apt 4", "1 MAIN ST #4"),
    ("B2210 Oak St", "B2210 OAK ST"),
    ("123 Eight Mile Rd", "123 EIGHT MILE RD"),  # a number word inside the name stays
    ("100 First St", "100 1ST ST"),
]

# 8. Periods, hyphens and "#" glued anywhere.
GLUED = [
    ("12 Main Ste. 700", "12 MAIN #700"),
    ("12 Main St Apt.4", "12 MAIN ST #4"),
    ("12 Main St #4-B", "12 MAIN ST #4B"),
    ("12 Main St #4B", "12 MAIN ST #4B"),
    ("12 Elm- 3rd Floor", "12 ELM #FL3"),
    ("12 Elm 3rd Floor", "12 ELM #FL3"),
    ("12 Main St Apt#4", "12 MAIN ST #4"),
    ("12 Main St Apt-4", "12 MAIN ST #4"),
    ("12 Main St Unit#4", "12 MAIN ST #4"),
    ("12 Main St.,Apt.4", "12 MAIN ST #4"),
    ("12 Main St. Apt. 4-B", "12 MAIN ST #4B"),
    ("12 Main St Apt 4 B", "12 MAIN ST #4B"),
    ("12 Main St Apt 3-12", "12 MAIN ST #3-12"),
    ("12 N. Main St.", "12 N MAIN ST"),
    ("12 Main St. N.", "12 MAIN ST N"),
    ("12 Main St-Apt 4", "12 MAIN ST #4"),
]

# Respellings of suffixes and directionals (Publication 28 C1) keep the key.
STREET_WORDS = [
    ("123 North Main Street", "123 N MAIN ST"),
    ("123 N Main St", "123 N MAIN ST"),
    ("123 Main Street Southwest", "123 MAIN ST SW"),
    ("123 Elm Avenue", "123 ELM AVE"),
    ("123 Elm Av", "123 ELM AVE"),
    ("123 Elm Boulevard", "123 ELM BLVD"),
    ("123 Elm Parkway", "123 ELM PKWY"),
    ("123 Elm Terrace", "123 ELM TER"),
    ("123 Elm Circle", "123 ELM CIR"),
    ("123 Elm Crossing", "123 ELM XING"),
    ("123 Elm Highway", "123 ELM HWY"),
    ("5 Saint James Place", "5 ST JAMES PL"),
    ("5 St. James Pl", "5 ST JAMES PL"),
    ("100 Twenty-First St", "100 21ST ST"),
    ("100 N St NW", "100 NORTH ST NW"),  # a directional street name is keyed spelled out
    ("100 North St", "100 NORTH ST"),
    ("100 Avenue of the Americas", "100 AVENUE OF THE AMERICAS"),
    ("100 Ave of the Americas", "100 AVENUE OF THE AMERICAS"),
    ("P.O. Box 12", "PO BOX 12"),
    ("PO Box # 12", "PO BOX 12"),
    ("Rural Route 2 Box 5", "RR 2 BOX 5"),
    ("100 State Route 7", "100 SR 7"),
    ("100 I-95", "100 I 95"),
]

TABLE = (COMMA_UNIT + AFTER_COMMA + DESIGNATORS + NO_DESIGNATOR + HOUSE_NUMBER_SUFFIX
         + UNIT_FIRST + OTHER_NUMBERS + GLUED + STREET_WORDS)


def test_the_table_is_big_enough_and_has_no_duplicates() -> None:
    assert len(TABLE) >= 200
    assert len({raw for raw, _ in TABLE}) == len(TABLE)


@pytest.mark.parametrize(("raw", "key"), TABLE)
def test_key(raw: str, key: str) -> None:
    parsed = normalize_address(raw)
    assert parsed.key == key
    # The stored street line parses back to the same door.
    assert normalize_address(parsed.street_line).key == key
    assert street_parts(raw)[0] == key


# A separate unit column (as the Ohio and Contra Costa files carry it).
UNIT_FIELD = [
    ("12 Main St", "2nd Floor", "12 MAIN ST #FL2"),
    ("12 Main St", "Fl 2", "12 MAIN ST #FL2"),
    ("12 Main St", "Rear", "12 MAIN ST #REAR"),
    ("12 Main St", "Apt 4, Rear", "12 MAIN ST #4-REAR"),
    ("12 Main St Fl 2", "2", "12 MAIN ST #FL2"),
    ("12 Main St Fl 2", "Fl 2", "12 MAIN ST #FL2"),
    ("12 Main St", "#4-B", "12 MAIN ST #4B"),
    ("12 Main", "Rear", "12 MAIN #REAR"),
    ("1800 K St, NW", "Ste 700", "1800 K ST NW #700"),
]


@pytest.mark.parametrize(("raw", "unit", "key"), UNIT_FIELD)
def test_key_with_a_unit_column(raw: str, unit: str, key: str) -> None:
    parsed = normalize_address(raw, unit)
    assert parsed.key == key
    # The importer stores (street_line, unit); the geocoder parses that pair again.
    assert normalize_address(parsed.street_line, parsed.unit or None).key == key


# --------------------------------------------------------------------------- unplaced


@pytest.mark.parametrize(("raw", "unplaced"), [
    ("123 Main St, Raleigh", "RALEIGH"),
    ("The Oaks, 123 Main St Apt 4", "THE OAKS"),
    ("123 Main St, Carriage House, Apt 2", "CARRIAGE HOUSE"),
    ("123 Main St, Foo, Bar", "FOO, BAR"),
    ("123 Main St N, S", "S"),  # a second post-directional has no place
    ("123 Main St, Raleigh, NC 27601", ""),
    ("1800 K St, NW Ste 700", ""),
    ("123 Main St Raleigh", ""),  # no comma: read as the street, as before
])
def test_unplaced_text_is_reported_and_kept(raw: str, unplaced: str) -> None:
    parsed = normalize_address(raw)
    assert parsed.unplaced == unplaced
    assert unplaced_part(raw) == unplaced
    for word in unplaced.replace(",", " ").split():
        assert word in parsed.key.split(" #")[0]
        assert word in parsed.street_line


def test_unplaced_text_never_merges_two_doors() -> None:
    keys = {normalize_address(raw).key for raw in (
        "123 Main St, The Oaks", "123 Main St, The Pines", "123 Main St", "123 Main St, Apt 2")}
    assert len(keys) == 4


def test_building_key_is_the_key_without_the_unit() -> None:
    """The parcel link strips `` #unit`` from a household key: what is left
    must be the key of the same address written without a unit."""
    for raw, building in [
        ("111 W Elm St, 12C", "111 W Elm St"), ("18 Second St, 3rd Floor", "18 Second St"),
        ("Unit 204 318 N Oak St", "318 N Oak St"), ("214 B S Blvd Apt 2", "214 B South Blvd"),
        ("The Oaks, 123 Main St Apt 4", "123 Main St, The Oaks"),
        ("1800 K St, NW Ste 700", "1800 K St NW"), ("12 Main St Rear", "12 Main St"),
    ]:
        key = household_key(raw, "Raleigh", "NC", "27601")
        assert building_household_key(key) == household_key(building, "Raleigh", "NC", "27601")
        assert key.count(" #") == 1
        building_line = normalize_address(raw).building_line
        assert normalize_address(building_line).key == normalize_address(building).key


# --------------------------------------------------------------------------- voter import


def _records(text: str) -> list[VoterRecord | RowIssue]:
    stream = io.BytesIO(text.encode())
    found = inspect_file(stream, "simple_csv", 10**6)
    header = read_header_line(stream)
    assert header is not None
    detection = resolve_layout(header, found.layout.name)
    reader = RowReader(detection.layout, detection.header)
    return [item for _, item in iter_rows(stream, reader, found.data_offset, found.first_row)]


def test_voter_import_warns_about_unplaced_text_and_keeps_it() -> None:
    rows = _records("\n".join([
        "first_name,last_name,email,address,city,state,zip",
        'Ann,Lee,ann@x.org,"123 Main St, The Oaks",Durham,NC,27701',
        'Bo,Lee,bo@x.org,"123 Main St, Apt 4",Durham,NC,27701',
        "Cy,Lee,cy@x.org,123 Main St,Durham,NC,27701",
    ]))
    oaks, flat, plain = rows
    assert isinstance(oaks, VoterRecord) and isinstance(flat, VoterRecord)
    assert isinstance(plain, VoterRecord)
    assert [(w.row, w.code, w.fatal) for w in oaks.warnings] == [(2, "address_unplaced", False)]
    assert "THE OAKS" in oaks.warnings[0].message
    assert oaks.household is not None and oaks.household.key == "123 MAIN ST THE OAKS|27701"
    assert oaks.household.street_line == "123 MAIN ST, THE OAKS"
    assert flat.warnings == [] and plain.warnings == []
    assert flat.household is not None and flat.household.key == "123 MAIN ST #4|27701"
