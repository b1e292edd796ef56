"""US street address normalisation (USPS Publication 28) and household keys.

Why this exists
---------------
Voter files spell one residence many ways (``123 North Main Street Apt 4B``,
``123  N MAIN   ST # 4-B``). A household is one *normalised residence address
including the unit*, so every spelling of one door must collapse to one key and
different doors must not. General parsers are too slow for a 100k-row import
(usaddress ~5-9k/s) and neither usaddress nor scourgify yields a usable key (see
``reference/data-formats.md``), so this is a small token-based normaliser: upper
case, one ``str.translate`` for punctuation, ``str.split`` and dict lookups. It
runs at well over 50k addresses/s single-threaded (``bench/normalize.py``).

What it does
------------
* Street suffixes, directionals and secondary unit designators become their
  Publication 28 abbreviations (Appendix C1 suffix table with its common
  variants, e.g. ``STREET/STR/STRT -> ST``, ``AV/AVEN/AVENUE -> AVE``).
* Only the *last* street word is treated as the suffix, only a *leading* word
  as a pre-directional and only a *trailing* one as a post-directional, and only
  when a street name is left over. So ``100 NORTH ST`` keeps the street name
  ``NORTH``; ``12 PARK AVE`` keeps ``PARK``; ``5 ST JAMES PL`` keeps ``ST JAMES``.
* A directional that is the whole street name is kept exactly as written:
  ``100 N ST`` (N Street, as in Washington DC) and ``100 NORTH ST`` (North
  Street) stay different streets.
* A street *type* that starts the name (``AVENUE C``, ``AVE C``) is written out
  as ``AVENUE`` (Publication 28 style); the word ``SAINT`` is written ``ST``.
* Ordinal street names written as one word become numbers
  (``FIRST -> 1ST``, ``TWENTY-FIRST -> 21ST``), the form USPS uses.
* Highways: ``HIGHWAY/HIWAY/HWY 54 -> HWY 54``; ``US 1``, ``U S HWY 1``,
  ``US ROUTE 1 -> US HWY 1``; ``STATE ROUTE 7``/``ST RTE 7``/``STATE RD 7 -> SR 7``;
  ``COUNTY ROAD 12``/``CO RD 12 -> CR 12``; ``INTERSTATE 95``/``I-95 -> I 95``;
  a state code before a number (``NC 54``) or ``HWY`` (``NC HIGHWAY 54``) gives
  ``NC HWY 54``; ``ROUTE 66 -> RTE 66``. (A bare ``NE 5`` or ``FL 5`` is not
  read as a state highway: those are far more often a directional or a floor.)
* PO boxes (``P.O. BOX 12``, ``PO BOX 12``, ``POB 12``, ``POST OFFICE BOX 12``,
  ``BOX 12``) become ``PO BOX 12``; rural routes (``RURAL ROUTE 2 BOX 5``,
  ``RFD 2 BOX 5``, ``RT 2 BOX 5``) become ``RR 2 BOX 5`` and highway contract
  / star routes become ``HC 1 BOX 3``.
* House numbers: fractions stay with the number (``123 1/2 MAIN ST``), ranges and
  Queens-style numbers keep their hyphen (``12-14``, ``123-45``), a hyphen
  between digits and a letter is dropped (``123-A -> 123A``).
* Text after a comma is the city/state/ZIP and is ignored, unless it starts with
  a unit designator, ``#`` or ``BOX`` (``123 MAIN ST, APT 4``, ``RR 2, BOX 5``).
  Without a comma a trailing city is *not* detected: it becomes part of the
  street, consistently, so it can only split a household, never merge two.

Units and the key
-----------------
``APT 4B``, ``# 4B``, ``#4B``, ``UNIT 4B``, ``APARTMENT 4B``, ``STE 4B``,
``APT. 4-B``, ``APT4B`` and a bare trailing ``4B`` after the suffix
(``123 MAIN ST 4B``) are one household: :attr:`NormalizedAddress.key` drops the
designator and keeps the identifier. In the identifier a hyphen or space between
digits and a letter is dropped (``4-B``, ``4 B`` -> ``4B``) because both are
data-entry noise, while one between two numbers is kept (``3-12`` is not
``312``); several identifiers (``BLDG 3 APT 12``) join as ``3-12``. Leading zeros
are kept (``APT 04`` is not ``APT 4``): Publication 28 does not strip them and
guessing would merge real doors. Designators that carry no number (``REAR``,
``FRNT``, ``BSMT``, ``UPPR``, ``LOWR``, ``PH``, ...) *are* the identifier.

A designator with nothing after it (``100 MAIN ST APT``) is dropped. A word
unit (``REAR``) only counts after a complete street (``100 MAIN ST REAR``), so
``100 N FRONT ST`` keeps its name.

Re-parsing ``street_line`` always gives the same ``key`` (property-tested):
every decision above is made so that it reads the same on the abbreviated text.

Known limits (they split a household, they never merge two): a city/state/ZIP
without a comma stays in the street; a unit written *before* the house number
(``APT 4B 123 MAIN ST``) is not moved; two-word directionals (``N E``) and
two-word ordinals (``TWENTY FIRST``) are not joined; name words other than the
leading type and ``SAINT`` are not abbreviated (``MOUNT``/``MT``,
``MARTIN LUTHER KING``/``MLK``).

Locality
--------
:func:`household_key` appends the locality: the 5-digit ZIP when there is a
usable one (ZIP+4 stripped, a ZIP whose leading zeros a spreadsheet ate is
padded back, ``00000`` counts as missing), else the normalised city + state.
The ZIP wins over the city because voter files spell cities inconsistently
(``WINSTON SALEM``/``WINSTON-SALEM``) far more often than they get the ZIP wrong;
the cost is that the same door with and without a ZIP gets two keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "NormalizedAddress", "address_household_key", "household_key", "locality_key",
    "normalize_address", "normalize_city", "normalize_zip", "parse_address", "street_parts",
]

# --------------------------------------------------------------------------- tables

# USPS Publication 28, Appendix C1: "standard abbreviation: the spellings seen in
# the wild", one street suffix per line. The primary name is among the variants.
_SUFFIX_TABLE = """
ALY: ALLEE ALLEY ALLY
ANX: ANEX ANNEX ANNX
ARC: ARCADE
AVE: AV AVEN AVENU AVENUE AVN AVNUE
BYU: BAYOO BAYOU
BCH: BEACH
BND: BEND
BLF: BLUF BLUFF
BLFS: BLUFFS
BTM: BOT BOTTM BOTTOM
BLVD: BOUL BOULEVARD BOULV BLVRD
BR: BRNCH BRANCH
BRG: BRDGE BRIDGE
BRK: BROOK
BRKS: BROOKS
BG: BURG
BGS: BURGS
BYP: BYPA BYPAS BYPASS BYPS
CP: CAMP CMP
CYN: CANYN CANYON CNYN
CPE: CAPE
CSWY: CAUSEWAY CAUSWA
CTR: CEN CENT CENTER CENTR CENTRE CNTER CNTR
CTRS: CENTERS
CIR: CIRC CIRCL CIRCLE CRCL CRCLE
CIRS: CIRCLES
CLF: CLIFF
CLFS: CLIFFS
CLB: CLUB
CMN: COMMON
CMNS: COMMONS
COR: CORNER
CORS: CORNERS
CRSE: COURSE
CT: COURT CRT
CTS: COURTS
CV: COVE
CVS: COVES
CRK: CREEK
CRES: CRESCENT CRSENT CRSNT
CRST: CREST
XING: CROSSING CRSSNG
XRD: CROSSROAD
XRDS: CROSSROADS
CURV: CURVE
DL: DALE
DM: DAM
DV: DIV DIVIDE DVD
DR: DRIV DRIVE DRV
DRS: DRIVES
EST: ESTATE
ESTS: ESTATES
EXPY: EXP EXPR EXPRESS EXPRESSWAY EXPW
EXT: EXTENSION EXTN EXTNSN
EXTS: EXTENSIONS
FALL: FALL
FLS: FALLS
FRY: FERRY FRRY
FLD: FIELD
FLDS: FIELDS
FLT: FLAT
FLTS: FLATS
FRD: FORD
FRDS: FORDS
FRST: FOREST FORESTS
FRG: FORG FORGE
FRGS: FORGES
FRK: FORK
FRKS: FORKS
FT: FORT FRT
FWY: FREEWAY FREEWY FRWAY FRWY
GDN: GARDEN GARDN GRDEN GRDN
GDNS: GARDENS GRDNS
GTWY: GATEWAY GATEWY GATWAY GTWAY
GLN: GLEN
GLNS: GLENS
GRN: GREEN
GRNS: GREENS
GRV: GROV GROVE
GRVS: GROVES
HBR: HARB HARBOR HARBR HRBOR
HBRS: HARBORS
HVN: HAVEN
HTS: HT HEIGHTS HGTS
HWY: HIGHWAY HIGHWY HIWAY HIWY HWAY
HL: HILL
HLS: HILLS
HOLW: HLLW HOLLOW HOLLOWS HOLWS
INLT: INLET
IS: ISLAND ISLND
ISS: ISLANDS ISLNDS
ISLE: ISLES
JCT: JCTION JCTN JUNCTION JUNCTN JUNCTON
JCTS: JCTNS JUNCTIONS
KY: KEY
KYS: KEYS
KNL: KNOL KNOLL
KNLS: KNOLLS
LK: LAKE
LKS: LAKES
LAND: LAND
LNDG: LANDING LNDNG
LN: LANE
LGT: LIGHT
LGTS: LIGHTS
LF: LOAF
LCK: LOCK
LCKS: LOCKS
LDG: LDGE LODG LODGE
LOOP: LOOPS
MALL: MALL
MNR: MANOR
MNRS: MANORS
MDW: MEADOW
MDWS: MEADOWS MEDOWS
MEWS: MEWS
ML: MILL
MLS: MILLS
MSN: MISSN MSSN MISSION
MTWY: MOTORWAY
MT: MNT MOUNT
MTN: MNTAIN MNTN MOUNTAIN MOUNTIN MTIN
MTNS: MNTNS MOUNTAINS
NCK: NECK
ORCH: ORCHARD ORCHRD
OVAL: OVL
OPAS: OVERPASS
PARK: PRK PARKS
PKWY: PARKWAY PARKWY PKWAY PKY PARKWAYS PKWYS
PASS: PASS
PSGE: PASSAGE
PATH: PATHS
PIKE: PIKES
PNE: PINE
PNES: PINES
PL: PLACE
PLN: PLAIN
PLNS: PLAINS
PLZ: PLAZA PLZA
PT: POINT
PTS: POINTS
PRT: PORT
PRTS: PORTS
PR: PRAIRIE PRR
RADL: RAD RADIAL RADIEL
RAMP: RAMP
RNCH: RANCH RANCHES RNCHS
RPD: RAPID
RPDS: RAPIDS
RST: REST
RDG: RDGE RIDGE
RDGS: RIDGES
RIV: RIVER RVR RIVR
RD: ROAD
RDS: ROADS
RTE: ROUTE
ROW: ROW
RUE: RUE
RUN: RUN
SHL: SHOAL
SHLS: SHOALS
SHR: SHOAR SHORE
SHRS: SHOARS SHORES
SKWY: SKYWAY
SPG: SPNG SPRING SPRNG
SPGS: SPNGS SPRINGS SPRNGS
SPUR: SPURS
SQ: SQR SQRE SQU SQUARE
SQS: SQRS SQUARES
STA: STATION STATN STN
STRA: STRAV STRAVEN STRAVENUE STRAVN STRVN STRVNUE
STRM: STREAM STREME
ST: STREET STRT STR
STS: STREETS
SMT: SUMIT SUMITT SUMMIT
TER: TERR TERRACE
TRWY: THROUGHWAY
TRCE: TRACE TRACES
TRAK: TRACK TRACKS TRK TRKS
TRFY: TRAFFICWAY
TRL: TRAIL TRAILS TRLS
TRLR: TRAILER TRLRS
TUNL: TUNEL TUNLS TUNNEL TUNNELS TUNNL
TPKE: TRNPK TURNPIKE TURNPK
UPAS: UNDERPASS
UN: UNION
UNS: UNIONS
VLY: VALLEY VALLY VLLY
VLYS: VALLEYS
VIA: VDCT VIADCT VIADUCT
VW: VIEW
VWS: VIEWS
VLG: VILL VILLAG VILLAGE VILLG VILLIAGE
VLGS: VILLAGES
VL: VILLE
VIS: VIST VISTA VST VSTA
WALK: WALKS
WALL: WALL
WAY: WY
WAYS: WAYS
WL: WELL
WLS: WELLS
"""


def _words(text: str) -> list[str]:
    return text.split()


def _load_table(text: str) -> dict[str, str]:
    """Parse ``STD: VARIANT ...`` lines into a variant -> standard map.

    Every standard abbreviation maps to itself, which is what makes
    normalisation idempotent (``ST`` must stay ``ST``).
    """
    table: dict[str, str] = {}
    for row in text.strip().splitlines():
        std, _, variants = row.partition(":")
        table[std] = std
        for variant in variants.split():
            table.setdefault(variant, std)
    return table


SUFFIXES: dict[str, str] = _load_table(_SUFFIX_TABLE)

DIRECTIONALS: dict[str, str] = _load_table("""
N: NORTH
S: SOUTH
E: EAST
W: WEST
NE: NORTHEAST
NW: NORTHWEST
SE: SOUTHEAST
SW: SOUTHWEST
""")

# USPS Publication 28, Appendix C2 (secondary unit designators) plus "#".
UNIT_DESIGNATORS: dict[str, str] = _load_table("""
APT: APARTMENT APPT APRT APTS
BLDG: BUILDING BLD BLDNG BLDGS
DEPT: DEPARTMENT
FL: FLOOR FLR
HNGR: HANGAR
LOT: LOT LT
PIER: PIER
RM: ROOM
SLIP: SLIP
SPC: SPACE SP
STOP: STOP
STE: SUITE
TRLR: TRAILER
UNIT: UNT UNITS
#: #
BSMT: BASEMENT
FRNT: FRONT
LBBY: LOBBY
LOWR: LOWER
OFC: OFFICE
PH: PENTHOUSE
REAR: REAR
SIDE: SIDE
UPPR: UPPER
""")

# Designators that need no number: the designator itself identifies the unit.
_STANDALONE_UNITS = frozenset({"BSMT", "FRNT", "LBBY", "LOWR", "OFC", "PH", "REAR", "SIDE", "UPPR"})

# Name-initial words canonicalised so that "AVE C"/"AVENUE C" are one street;
# deliberately short (see module docstring).
_NAME_PREFIX: dict[str, str] = {v: "AVENUE" for v, std in SUFFIXES.items() if std == "AVE"}
# SAINT is rewritten in the text, before anything else looks at the words, so
# that "SAINT RD 7" and "ST RD 7" read alike everywhere.
_SAINT = re.compile(r"\bSAINT\b")

_STATE_CODES = frozenset(_words(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT "
    "NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR"
))
_HWY_WORDS = frozenset(v for v, std in SUFFIXES.items() if std == "HWY")
_ROUTE_WORDS = frozenset({"ROUTE", "RTE", "RT"})
_ROAD_WORDS = frozenset({"ROAD", "RD"})
# Tokens that can start a highway name; if none is present the pass is skipped.
_HIGHWAY_TRIGGERS = (
    _HWY_WORDS | _ROUTE_WORDS | _ROAD_WORDS | _STATE_CODES | {"INTERSTATE", "I", "IH", "US", "U"}
)
# "NC 54" means NC HWY 54; not NE (the directional) nor FL (floor, "N FL 4").
_BARE_STATE_ROUTES = _STATE_CODES - {"NE"} - set(UNIT_DESIGNATORS)
# Suffixes that take a route number ("HWY 54"): a number after them is no unit.
_NUMBERED_ROADS = frozenset({"HWY", "RTE", "FWY", "EXPY", "TPKE"})


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}TH"
    return f"{n}{ {1: 'ST', 2: 'ND', 3: 'RD'}.get(n % 10, 'TH') }"


def _ordinal_words() -> dict[str, str]:
    """FIRST..NINETY-NINTH (also ``TWENTYFIRST``) -> ``1ST``..``99TH``."""
    units = _words("FIRST SECOND THIRD FOURTH FIFTH SIXTH SEVENTH EIGHTH NINTH TENTH "
                   "ELEVENTH TWELFTH THIRTEENTH FOURTEENTH FIFTEENTH SIXTEENTH SEVENTEENTH "
                   "EIGHTEENTH NINETEENTH")
    tens = _words("TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY")
    tens_ord = _words("TWENTIETH THIRTIETH FORTIETH FIFTIETH SIXTIETH SEVENTIETH EIGHTIETH "
                      "NINETIETH")
    words = {word: _ordinal(i) for i, word in enumerate(units, start=1)}
    for t, (ten, ten_ord) in enumerate(zip(tens, tens_ord, strict=True), start=2):
        words[ten_ord] = _ordinal(t * 10)
        for u, unit in enumerate(units[:9], start=1):
            words[f"{ten}-{unit}"] = words[f"{ten}{unit}"] = _ordinal(t * 10 + u)
    return words


ORDINALS: dict[str, str] = _ordinal_words()

# One pass of str.translate does all punctuation work: periods vanish ("N." ->
# "N", "P.O." -> "PO"), "#" becomes its own token ("#4B" -> "# 4B"), ";" acts
# like ",", "|" can never leak into the "street|locality" key.
_PUNCTUATION = str.maketrans({
    ".": "", "'": "", "\u2019": "", "`": "",
    "#": " # ", ";": ",",
    "\u00bd": " 1/2", "\u00bc": " 1/4", "\u00be": " 3/4",
    **{c: " " for c in '"()[]{}<>\\*_:!?=+@$%^|~'},
})

# Any character the table changes: most lines have none, and a regex search
# for one costs a seventh of the translate it then skips.
_HAS_PUNCTUATION = re.compile(
    "[" + "".join(re.escape(chr(c)) for c in sorted(_PUNCTUATION)) + "]").search

# "APT4B", "STE100", "#4B" is handled by the translate table.
_GLUED_UNIT = re.compile(
    r"(APT|APARTMENT|STE|SUITE|UNIT|RM|ROOM|LOT|BLDG|FL|SPC|SPACE|TRLR|PH)(\d\w*)"
)
_HAS_DIGIT = re.compile(r"\d").search
_PO_WORDS = frozenset({"PO", "P", "O", "POST", "OFFICE"})
_BOX_WORDS = frozenset({"BOX", "BX"})
_PO_START = _PO_WORDS | _BOX_WORDS | {"POB", "POBOX"}
_RURAL_START = frozenset({"RR", "RFD", "RURAL", "R", "RT", "RTE", "ROUTE", "HC", "HCR",
                          "HIGHWAY", "HWY", "STAR"})
# "APT NO 5", "UNIT NUMBER 5": filler between designator and identifier.
_UNIT_NUMBER_WORDS = frozenset({"NO", "NUM", "NBR", "NUMBER"})
_COMMA_CONTINUES = frozenset(UNIT_DESIGNATORS) | _BOX_WORDS


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class NormalizedAddress:
    """One parsed delivery line. ``kind`` is ``street``, ``po_box`` or ``rural_route``."""

    number: str = ""
    predirectional: str = ""
    street_name: str = ""
    suffix: str = ""
    postdirectional: str = ""
    unit_type: str = ""
    unit: str = ""
    kind: str = "street"

    @property
    def street_line(self) -> str:
        """USPS-formatted delivery line, e.g. ``123 N MAIN ST APT 4B``.

        Feeding it back to :func:`normalize_address` gives the same ``key``.
        """
        return _street_line(self.number, self.predirectional, self.street_name, self.suffix,
                            self.postdirectional, self.unit_type, self.unit)

    @property
    def key(self) -> str:
        """Identity of the delivery point: the unit designator does not count
        (``APT 4B`` and ``# 4B`` are one place), the unit identifier does."""
        return _key(_base(self.number, self.predirectional, self.street_name, self.suffix,
                          self.postdirectional), self.unit)


# What a parse gives, before it becomes a NormalizedAddress: its fields in order.
_Parts = tuple[str, str, str, str, str, str, str, str]


def _base(number: str, pre: str, name: str, suffix: str, post: str) -> str:
    """The delivery line without its unit."""
    return " ".join([p for p in (number, pre, name, suffix, post) if p])


def _street_line(number: str, pre: str, name: str, suffix: str, post: str, unit_type: str,
                 unit: str) -> str:
    return " ".join([p for p in (number, pre, name, suffix, post, unit_type, unit) if p])


def _key(base: str, unit: str) -> str:
    unit_id = _unit_identifier(unit.split()) if unit else ""
    if not unit_id:
        return base
    return f"{base} #{unit_id}" if base else f"#{unit_id}"


# --------------------------------------------------------------------------- helpers


def _join_alnum(parts: list[str]) -> str:
    """Join pieces, dropping the separator between digits and letters.

    ``["4", "B"] -> "4B"`` and ``["3", "12"] -> "3-12"``: a letter next to a
    number is one identifier however it was typed; two numbers are a range.
    """
    out = parts[0]
    for part in parts[1:]:
        if out[-1].isdigit() != part[0].isdigit():
            out += part
        else:
            out += "-" + part
    return out


def _dehyphen(token: str) -> str:
    """``123-A -> 123A``, ``4-B -> 4B``; ``12-14`` and ``123-45`` stay."""
    if "-" not in token:
        return token
    pieces = [p for p in token.split("-") if p]
    return _join_alnum(pieces) if pieces else ""


def _unit_identifier(tokens: list[str]) -> str:
    """The identifier part of a unit: designators and ``#`` dropped."""
    ids: list[str] = []
    for tok in tokens:
        std = UNIT_DESIGNATORS.get(tok)
        if std in _STANDALONE_UNITS:
            ids.append(std)
        elif std is None and tok not in _UNIT_NUMBER_WORDS:
            ids.extend(p for p in tok.split("-") if p)
    return _join_alnum(ids) if ids else ""


def _is_ordinal(token: str) -> bool:
    return token[-2:] in ("ST", "ND", "RD", "TH") and token[:-2].isdigit()


def _is_fraction(token: str) -> bool:
    num, slash, den = token.partition("/")
    return bool(slash) and num.isdigit() and den.isdigit()


def _looks_like_unit_id(token: str) -> bool:
    """``4B``, ``12``, ``C``, ``E`` yes; ``GENEVIEVE`` (``W STE GENEVIEVE``) no.

    The answer must not change when a word is abbreviated (``NORTH -> N``,
    ``STREET -> ST``), or a second pass over ``street_line`` would read it
    differently.
    """
    if token in SUFFIXES or token in UNIT_DESIGNATORS:
        return False  # "LOT RD", "REAR ST": a street word; "APT SP": a designator
    if token.isalpha():
        return len(token) <= 2 or token in DIRECTIONALS
    return not _is_glued(token)  # "APT4B" is "APT 4B"


def _is_glued(token: str) -> bool:
    """``APT4B``, ``STE100``: a designator and its number typed as one word."""
    return token[0].isalpha() and not token.isalpha() and bool(_GLUED_UNIT.fullmatch(token))


def _tokenize(text: str) -> list[str]:
    """Upper-case, strip punctuation, drop a ``, CITY, ST ZIP`` tail, split."""
    text = text.upper()
    if _HAS_PUNCTUATION(text):
        text = text.translate(_PUNCTUATION)
    if "SAINT" in text:
        text = _SAINT.sub("ST", text)
    if "," in text:
        segments = text.split(",")
        kept = [segments[0]]
        for segment in segments[1:]:
            words = segment.split()
            if not words:
                continue
            if words[0] not in _COMMA_CONTINUES and not _GLUED_UNIT.fullmatch(words[0]):
                break
            kept.append(segment)
        text = " ".join(kept)
    tokens = text.split()
    if "-" in text:
        tokens = _split_hyphens(tokens)
    return tokens


def _split_hyphens(tokens: list[str]) -> list[str]:
    """Drop stray hyphens and split ``I-95``/``US-1``/``NC-54`` into two tokens."""
    out: list[str] = []
    for tok in tokens:
        tok = tok.strip("-")
        if not tok:
            continue
        if "-" in tok:
            left, _, right = tok.partition("-")
            if left in _HIGHWAY_TRIGGERS and right[:1].isdigit():
                out.append(left)
                tok = right
        out.append(tok)
    return out


# --------------------------------------------------------------------------- PO box / RR


def _parse_po_box(tokens: list[str]) -> _Parts | None:
    """``P O BOX 12``, ``POST OFFICE BOX 12``, ``POB 12``, ``BOX 12`` -> ``PO BOX 12``."""
    i = 0
    while i < len(tokens) and i < 3 and tokens[i] in _PO_WORDS:
        i += 1
    if i < len(tokens) and (tokens[i] in _BOX_WORDS or (i == 0 and tokens[0] in ("POB", "POBOX"))):
        i += 1
    elif not (i == 1 and tokens[0] == "PO"):  # "PO 12"
        return None
    if i >= len(tokens) or not any(c.isdigit() for c in tokens[i]):
        return None
    name = " ".join(["PO BOX", _dehyphen(tokens[i]) or tokens[i], *tokens[i + 1:]])
    return ("", "", name, "", "", "", "", "po_box")


def _parse_rural_route(tokens: list[str]) -> _Parts | None:
    """``RR 2 BOX 5`` and ``HC 1 BOX 3`` with their long spellings.

    ``RT``/``RTE``/``ROUTE`` only mean a rural route when a ``BOX`` follows:
    ``ROUTE 66`` alone is a street.
    """
    first = tokens[0]
    second = tokens[1] if len(tokens) > 1 else ""
    i = 1
    kind = "RR"
    needs_box = False
    if first in ("RR", "RFD"):
        pass
    elif (first, second) == ("R", "R") or (first == "RURAL" and second in _ROUTE_WORDS):
        i = 2
    elif first in _ROUTE_WORDS:
        needs_box = True
    elif first in ("HC", "HCR"):
        kind = "HC"
    elif (first in _HWY_WORDS and second == "CONTRACT") or (
        first == "STAR" and second in _ROUTE_WORDS
    ):
        kind, i = "HC", 2
    else:
        return None
    if kind == "HC" and i < len(tokens) and tokens[i] in _ROUTE_WORDS:
        i += 1  # HIGHWAY CONTRACT ROUTE 1, HCR ROUTE 1
    if i >= len(tokens) or not tokens[i][:1].isdigit():
        return None
    route = tokens[i]
    rest = tokens[i + 1:]
    if rest and rest[0] in _BOX_WORDS and len(rest) > 1:
        parts = [kind, route, "BOX", _dehyphen(rest[1]) or rest[1], *rest[2:]]
    elif needs_box:
        return None
    else:
        parts = [kind, route, *rest]
    return ("", "", " ".join(parts), "", "", "", "", "rural_route")


# --------------------------------------------------------------------------- street


def _canonical_highways(tokens: list[str]) -> list[str]:
    """Rewrite the highway spellings listed in the module docstring, in one pass.

    Runs before the unit is split off, over every token, so that what decides
    the split (``APT IH 5`` vs ``APT I 5``) reads the same on a second pass.
    """
    out: list[str] = []
    n = len(tokens)
    for i, tok in enumerate(tokens):
        numbered = i + 1 < n and tokens[i + 1][:1].isdigit()
        prev = out[-1] if out else ""
        if not numbered:
            out.append(tok)
        elif tok in _HWY_WORDS:
            if prev == "S" and out[-2:-1] == ["U"]:
                out[-2:] = ["US"]
            elif prev == "ST":
                out[-1] = "STATE"
            out.append("HWY")
        elif tok in _ROUTE_WORDS or tok in _ROAD_WORDS:
            if prev in ("STATE", "ST"):
                out[-1] = "SR"
            elif prev in ("COUNTY", "CO"):
                out[-1] = "CR"
            elif prev == "S" and out[-2:-1] == ["U"]:
                out[-2:] = ["US", "HWY"]
            elif prev == "US":
                out.append("HWY")
            elif tok in _ROUTE_WORDS:
                out.append("RTE")
            else:
                out.append(tok)
        elif tok in ("INTERSTATE", "IH"):
            out.append("I")
        elif (tok == "US" or tok in _BARE_STATE_ROUTES) and (
            not prev or prev in DIRECTIONALS or prev == "OLD"
        ):
            out += [tok, "HWY"]  # only where a name starts: "OAK CT 5" is a unit
        elif tok == "S" and prev == "U":
            out[-1:] = ["US", "HWY"]
        else:
            out.append(tok)
    return out


def _ends_street(tokens: list[str], i: int) -> bool:
    """Does ``tokens[:i]`` end like a complete street (``MAIN ST``, ``MAIN ST N``,
    ``HWY 54``)? Guards word-units such as ``REAR`` or ``FRONT`` so that
    ``100 N FRONT ST`` keeps its street name."""
    if i < 2 or tokens[i - 2] in DIRECTIONALS:
        return False
    prev = tokens[i - 1]
    return prev in SUFFIXES or prev in DIRECTIONALS or not prev.isalpha()


def _split_unit(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Split street tokens from a trailing secondary unit (designator first)."""
    n = len(tokens)
    for i, tok in enumerate(tokens):
        if tok == "#":
            return tokens[:i], tokens[i:]
        if i == 0:
            continue  # "100 SUITE ST", "100 LOT RD": the first word names the street
        std = UNIT_DESIGNATORS.get(tok)
        if std is None:
            if tok[0].isalpha() and not tok.isalpha():
                glued = _GLUED_UNIT.fullmatch(tok)
                if glued:
                    return tokens[:i], [glued.group(1), glued.group(2), *tokens[i + 1:]]
            continue
        if std in _STANDALONE_UNITS:
            nxt = tokens[i + 1] if i + 1 < n else ""
            if (not nxt or nxt in UNIT_DESIGNATORS or _looks_like_unit_id(nxt)
                    or _is_glued(nxt)) and _ends_street(tokens, i):
                return tokens[:i], tokens[i:]
            continue
        j = i + 1
        while j < n and (tokens[j] == "#" or tokens[j] in _UNIT_NUMBER_WORDS):
            j += 1  # "APT # 4", "APT NO 4"
        if j < n and _looks_like_unit_id(tokens[j]):
            return tokens[:i], tokens[i:]
    return tokens, []


def _drop_dangling(tokens: list[str]) -> list[str]:
    """``100 MAIN ST APT`` (designator, no number): the ``APT`` is noise.

    Words that are street suffixes too (``TRAILER``) are kept: they may be the
    suffix, and once abbreviated nobody can tell.
    """
    while len(tokens) >= 3:
        last = tokens[-1]
        std = UNIT_DESIGNATORS.get(last)
        if (std is None or std == "#" or std in _STANDALONE_UNITS or last in SUFFIXES
                or not _ends_street(tokens, len(tokens) - 1)):
            break
        tokens = tokens[:-1]
    return tokens


def _trailing_unit(tokens: list[str]) -> tuple[list[str], list[str]]:
    """``123 MAIN ST 4B`` (no designator): a number after the suffix or the
    post-directional is a unit, except after a numbered road (``US HWY 1``)."""
    if len(tokens) < 3 or not _HAS_DIGIT(tokens[-1]):
        return tokens, []
    before = tokens[-2]
    if before in DIRECTIONALS and len(tokens) >= 4:
        before = tokens[-3]
    elif before in DIRECTIONALS:
        return tokens, []
    if before in SUFFIXES and SUFFIXES[before] not in _NUMBERED_ROADS:
        return tokens[:-1], ["#", tokens[-1]]
    return tokens, []


def _parse_unit(tokens: list[str]) -> tuple[str, str]:
    """Unit tokens (designator first) -> (``unit_type``, ``unit``)."""
    if not tokens:
        return "", ""
    std = UNIT_DESIGNATORS.get(tokens[0])
    if std is None:
        std, rest = "#", tokens
    elif std in _STANDALONE_UNITS:
        std, rest = "", tokens
    else:
        rest = tokens[1:]
    words: list[str] = []
    for tok in rest:
        if tok in _UNIT_NUMBER_WORDS and not words:
            continue  # "APT NO 5"
        if tok == "#":
            # "APT # 4" is "APT 4". Any other "#" stays (once): it is what made
            # the next word a unit ("REAR # MAIN") and must survive a re-parse.
            if (not words and std) or (words and words[-1] == "#"):
                continue
            words.append(tok)
            continue
        inner = UNIT_DESIGNATORS.get(tok)
        if inner:
            words.append(inner)
            continue
        glued = _GLUED_UNIT.fullmatch(tok) if tok[0].isalpha() and not tok.isalpha() else None
        if glued:  # "# APT4B": read as "APT 4B" wherever it appears
            words += [UNIT_DESIGNATORS[glued.group(1)], glued.group(2)]
        else:
            words.append(_dehyphen(tok))
    while words and words[-1] == "#":
        words.pop()
    words = [w for w in words if w]
    if not _unit_identifier(words):
        return "", ""  # designators only ("APT #"): nothing identifies a door
    return std, " ".join(words)


def _split_number(tokens: list[str]) -> tuple[str, list[str]]:
    """House number (with a ``1/2`` fraction) and the remaining tokens.

    An ordinal (``1ST``) is a street name, never a house number: ``FIRST ST``
    is written ``1ST ST`` and must read back the same way.
    """
    if not tokens:
        return "", tokens
    number = tokens[0]
    if not number.isdigit():  # the common case, "123", skips the checks below
        if not number[0].isdigit() or _is_ordinal(number):
            return "", tokens
        number = _dehyphen(number)
    if len(tokens) > 1 and _is_fraction(tokens[1]):
        return f"{number} {tokens[1]}", tokens[2:]
    return number, tokens[1:]


def _parse_street(tokens: list[str]) -> tuple[str, str, str, str]:
    """(predirectional, name, suffix, postdirectional) from street-name tokens."""
    pre = suffix = post = ""
    if len(tokens) >= 2 and tokens[-1] in DIRECTIONALS and not (
        len(tokens) == 2 and tokens[0] in SUFFIXES  # "AVENUE N" is a lettered avenue
    ):
        post = DIRECTIONALS[tokens[-1]]
        tokens = tokens[:-1]
    if len(tokens) >= 2 and tokens[-1] in SUFFIXES:
        suffix = SUFFIXES[tokens[-1]]
        tokens = tokens[:-1]
    if len(tokens) >= 2 and tokens[0] in DIRECTIONALS:
        pre = DIRECTIONALS[tokens[0]]
        tokens = tokens[1:]
    if len(tokens) == 1:
        tokens = [ORDINALS.get(tokens[0], tokens[0])]
    elif len(tokens) > 1 and tokens[0] in _NAME_PREFIX:
        tokens = [_NAME_PREFIX[tokens[0]], *tokens[1:]]
    return pre, " ".join(tokens), suffix, post


# --------------------------------------------------------------------------- public


def parse_address(line: str, unit: str | None = None) -> NormalizedAddress:
    """:func:`normalize_address` without its cache.

    For callers that already cache at a coarser level (a voter file reader
    keeps one entry per distinct address *row*): a second, process-wide LRU
    behind theirs would only cost a lookup and an eviction per miss.
    """
    return NormalizedAddress(*_parse_line(line, unit))


def street_parts(line: str, unit: str | None = None) -> tuple[str, str, str]:
    """``(key, street_line, unit)`` of :func:`parse_address`, without building
    the :class:`NormalizedAddress` (for a voter import, which needs only these,
    once per distinct address spelling)."""
    number, pre, name, suffix, post, unit_type, unit_text, _ = _parse_line(line, unit)
    base = _base(number, pre, name, suffix, post)
    street_line = " ".join([p for p in (base, unit_type, unit_text) if p])
    return _key(base, unit_text), street_line, unit_text


def _parse_line(line: str, unit: str | None) -> _Parts:
    tokens = _tokenize(line)
    if unit:
        extra = _tokenize(unit)
        if extra:
            tokens = _with_unit(tokens, extra)
    return _parse_tokens(tokens)


@lru_cache(maxsize=16384)
def normalize_address(line: str, unit: str | None = None) -> NormalizedAddress:
    """Parse one free-form street line (plus an optional separate unit field).

    Never raises on text. Results are cached (voter files repeat addresses,
    one row per voter in the household); the result is immutable.
    """
    return parse_address(line, unit)


def _with_unit(tokens: list[str], extra: list[str]) -> list[str]:
    """Append a separate unit field to the line's tokens.

    It is appended as text (behind ``#`` unless it names its own designator)
    rather than merged after parsing, so ``(line, unit)`` parses exactly like
    the ``street_line`` it produces: that is what keeps the key stable on a
    second pass. The same identifier in both places (``... APT 4B`` + ``4B``)
    counts once; a different one is kept (``BLDG 3`` + ``APT 12``).
    """
    glued = _GLUED_UNIT.fullmatch(extra[0])
    if glued:
        extra = [glued.group(1), glued.group(2), *extra[1:]]
    elif extra[0] not in UNIT_DESIGNATORS:
        extra = ["#", *extra]
    extra_id = _unit_identifier(extra)
    if not extra_id:
        return tokens
    own_unit = _parse_tokens(tokens)[6]
    if own_unit and _unit_identifier(own_unit.split()) == extra_id:
        return tokens
    return tokens + extra


def _parse_tokens(tokens: list[str]) -> _Parts:
    if tokens and tokens[0] in _PO_START:
        special = _parse_po_box(tokens)
        if special is not None:
            return special
    if tokens and tokens[0] in _RURAL_START:
        special = _parse_rural_route(tokens)
        if special is not None:
            return special
    number, tokens = _split_number(tokens)
    if not _HIGHWAY_TRIGGERS.isdisjoint(tokens):
        tokens = _canonical_highways(tokens)
    street, unit_tokens = _split_unit(tokens)
    unit_type, unit_text = _parse_unit(unit_tokens) if unit_tokens else ("", "")
    if not unit_text:
        street = _drop_dangling(street)
        street, unit_tokens = _trailing_unit(street)  # after highways: "CR 12" is no unit
        if unit_tokens:
            unit_type, unit_text = _parse_unit(unit_tokens)
    pre, name, suffix, post = _parse_street(street)
    return (number, pre, name, suffix, post, unit_type, unit_text, "street")


def normalize_zip(zip_code: str | None) -> str:
    """5-digit ZIP or ``""``: ZIP+4 stripped, eaten leading zeros restored."""
    text = (zip_code or "").strip()
    if len(text) == 5 and text.isdigit() and text.isascii():
        return "" if text == "00000" else text
    digits = "".join(c for c in (zip_code or "") if c.isascii() and c.isdigit())
    if len(digits) in (5, 9):
        zip5 = digits[:5]
    elif len(digits) in (3, 4) and digits == (zip_code or "").strip():
        zip5 = digits.zfill(5)  # 2134 from a spreadsheet is 02134
    else:
        return ""
    return "" if zip5 == "00000" else zip5


def normalize_city(city: str | None) -> str:
    """Upper case, no periods/hyphens, single spaces: ``Winston-Salem`` ->
    ``WINSTON SALEM``, ``St. Louis`` -> ``ST LOUIS``."""
    text = (city or "").upper().translate(_PUNCTUATION).replace("-", " ").replace(",", " ")
    return " ".join(text.split())


def household_key(
    street: str, city: str | None, state: str | None, zip_code: str | None,
    unit: str | None = None,
) -> str:
    """Key shared by every spelling of one residence: street key + locality.

    The locality is the 5-digit ZIP when there is one, else city + state
    (``street key|27601`` or ``street key|RALEIGH,NC``). A row with no street
    gives a key starting with ``|``: callers should not group those into one
    "household" (check ``normalize_address(street).key`` first).
    """
    return address_household_key(normalize_address(street, unit), city, state, zip_code)


def address_household_key(address: NormalizedAddress, city: str | None, state: str | None,
                          zip_code: str | None) -> str:
    """:func:`household_key` of an address already parsed (with its unit), so
    a caller that needs both the parse and the key parses once."""
    return f"{address.key}|{locality_key(city, state, normalize_zip(zip_code))}"


def locality_key(city: str | None, state: str | None, zip5: str) -> str:
    """The part of a household key after ``|``: the 5-digit ZIP (as
    :func:`normalize_zip` gives it) if there is one, else ``CITY,STATE``."""
    return zip5 or f"{normalize_city(city)},{normalize_city(state)}"
