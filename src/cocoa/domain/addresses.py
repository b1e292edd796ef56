"""US street address normalisation (USPS Publication 28) and household keys.

Why this exists
---------------
Voter files spell one residence many ways (``123 North Main Street Apt 4B``,
``123  N MAIN   ST # 4-B``, ``Apt 4B, 123 N Main St``). A household is one
*normalised residence address including the unit*, so every spelling of one
door must collapse to one key and different doors must not. General parsers
(usaddress) are too slow for a statewide import and neither usaddress nor
scourgify yields a usable key, so this is a small token-based normaliser:
upper case, one ``str.translate`` for punctuation, ``str.split`` and dict
lookups. A line that starts with a plain house number and has no comma, floor
or highway word skips every rewrite below (its speed against usaddress:
``bench/normalize.py``, figures in ``docs/benchmarks.md``).

What it does
------------
* Street suffixes, directionals and secondary unit designators become their
  Publication 28 abbreviations (Appendix C1 suffix table with its common
  variants, e.g. ``STREET/STR/STRT -> ST``, ``AV/AVEN/AVENUE -> AVE``; all of
  Appendix C2, plus ``LEVEL`` read as a floor and ``UPSTAIRS``/``DOWNSTAIRS``).
* Only the *last* street word is treated as the suffix, only a *leading* word
  as a pre-directional and only a *trailing* one as a post-directional, and only
  when a street name is left over. So ``100 NORTH ST`` keeps the street name
  ``NORTH``; ``12 PARK AVE`` keeps ``PARK``; ``5 ST JAMES PL`` keeps ``ST JAMES``.
* A directional that is the whole street name is kept as written in the
  street line but keyed spelled out: ``214 S BLVD`` and ``214 SOUTH BLVD``
  (South Boulevard) are one street. (So are ``N ST`` and ``NORTH ST`` of one
  ZIP: a rare merge, taken for a common split.)
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
  ``BOX 12``, ``PO BOX # 12``) become ``PO BOX 12``; rural routes (``RURAL
  ROUTE 2 BOX 5``, ``RFD 2 BOX 5``, ``RT 2 BOX 5``) become ``RR 2 BOX 5`` and
  highway contract / star routes become ``HC 1 BOX 3``.
* House numbers: fractions stay with the number (``123 1/2 MAIN ST``,
  ``123-1/2``), ranges and Queens-style numbers keep their hyphen (``12-14``,
  ``123-45``), a letter after the number joins it (``123-A``, ``123 A MAIN ST``
  -> ``123A``; not ``123 A ST``, A Street), Wisconsin/Illinois grid numbers
  are one number (``N62W14123``, ``W152 N8945`` -> ``W152N8945``), as are
  ``B2210`` and a number word first (``ONE N MAIN ST`` -> ``1 N MAIN ST``).
* A unit written before the street moves behind it (``APT 4, 10 MAIN ST``,
  ``UNIT 204 318 N OAK ST``, ``# 4 10 MAIN ST``).

Commas
------
The part before the first comma that holds the house number is the street.
Every other comma-separated part is placed: a unit (``111 W ELM ST, 12C``,
``, #3``, ``, 3RD FLOOR``, ``, REAR``), a post-directional (``1800 K ST, NW STE
700``), or the city/state/ZIP at the end (``, RALEIGH, NC 27601``; dropped:
the household key takes the locality from its own columns). A stray hyphen
before a unit acts like a comma (``12 OAK CT - B``). Anything else is
*unplaced* (``100 MAIN ST, THE OAKS``): it stays in ``street_line`` (after a
comma) and in the key (before the unit), and :func:`unplaced_part` reports
it so that importers can warn. Nothing is dropped: at worst two spellings
split, two doors never merge. Without a comma nothing is unplaced: a trailing
city stays part of the street, consistently, as before.

Units and the key
-----------------
``APT 4B``, ``# 4B``, ``#4B``, ``UNIT 4B``, ``APARTMENT 4B``, ``STE 4B``,
``APT. 4-B``, ``APT4B`` and a bare trailing ``4B`` after the suffix
(``123 MAIN ST 4B``, also ``4 B`` and a single letter ``123 MAIN ST B``) are
one household: :attr:`NormalizedAddress.key` drops the designator and keeps
the identifier. In the identifier a hyphen or space between digits and a
letter is dropped (``4-B``, ``4 B`` -> ``4B``) because both are data-entry
noise, while one between two numbers is kept (``3-12`` is not ``312``); each
designator's identifier is one part and parts join with ``-`` (``BLDG 3 APT
12`` -> ``3-12``, ``BLDG 3A APT 2`` -> ``3A-2``). Leading zeros are kept
(``APT 04`` is not ``APT 4``): Publication 28 does not strip them and
guessing would merge real doors. A floor keeps its designator (``FL 2``,
``2ND FLOOR``, ``7TH FLR`` -> ``FL2``): floor 2 is not apartment 2.
Designators that carry no number (``REAR``, ``FRNT``, ``BSMT``, ``UPPR``,
``LOWR``, ``PH``, ...) *are* the identifier (``PH 2`` -> ``PH2``).

A designator with nothing after it (``100 MAIN ST APT``) is dropped; a word
before it is the unit (``100 MAIN ST GARAGE APT`` -> ``#GARAGE``). A word
unit (``REAR``) only counts after a complete street (``100 MAIN ST REAR``),
so ``100 N FRONT ST`` keeps its name.

Re-parsing ``street_line`` always gives the same ``key`` (property-tested):
every decision above is made so that it reads the same on the abbreviated
text. The key is ``street[ unplaced][ #unit]``: `` #`` appears only before
the unit identifier, which is what :func:`building_household_key` cuts.

Known limits (they split a household, they never merge two): a city/state/ZIP
without a comma stays in the street; two-word directionals (``N E``) and
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

from cocoa.domain.pub28 import DIRECTIONALS, STANDALONE_UNITS, SUFFIXES, UNIT_DESIGNATORS

__all__ = [
    "NormalizedAddress", "address_household_key", "household_key", "locality_key",
    "building_household_key", "normalize_address", "normalize_city", "normalize_zip",
    "parse_address", "street_parts", "unplaced_part",
]

# --------------------------------------------------------------------------- tables

# Publication 28's own tables are data in :mod:`cocoa.domain.pub28`.


def _words(text: str) -> list[str]:
    return text.split()


# Words that are a suffix and a designator (KEY/KY, TRAILER/TRLR), in every spelling.
_SUFFIX_OR_UNIT = frozenset(
    {w for w in SUFFIXES if w in UNIT_DESIGNATORS} | {SUFFIXES[w] for w in SUFFIXES
                                                    if w in UNIT_DESIGNATORS})
# Spellings of FL: a floor is kept in the key ("#FL2"), unlike APT/UNIT/STE/#.
_FLOOR_WORDS = frozenset(v for v, std in UNIT_DESIGNATORS.items() if std == "FL")

# Name-initial words canonicalised so that "AVE C"/"AVENUE C" are one street;
# deliberately short (see module docstring).
_NAME_PREFIX: dict[str, str] = {v: "AVENUE" for v, std in SUFFIXES.items() if std == "AVE"}
# SAINT is rewritten in the text, before anything else looks at the words, so
# that "SAINT RD 7" and "ST RD 7" read alike everywhere.
_SAINT = re.compile(r"\bSAINT\b")

_STATE_CODES = frozenset(_words(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT "
    "NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR"
))
_HWY_WORDS = frozenset(v for v, std in SUFFIXES.items() if std == "HWY")
_ROUTE_WORDS = frozenset({"ROUTE", "RTE", "RT"})
_ROAD_WORDS = frozenset({"ROAD", "RD"})
# Tokens that can start a highway name; if none is present the pass is skipped.
_HIGHWAY_TRIGGERS = (
    _HWY_WORDS | _ROUTE_WORDS | _ROAD_WORDS | _STATE_CODES | {"INTERSTATE", "I", "IH", "US", "U"}
)
# Words that make a line take the floor or highway rewrites (one set test).
_REWRITTEN_WORDS = _FLOOR_WORDS | _HIGHWAY_TRIGGERS
# Words a highway is written with, before and after _canonical_highways.
_HIGHWAY_WORDS = _HIGHWAY_TRIGGERS | {"SR", "CR", "STATE", "COUNTY"}
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
# for one is cheaper than the translate it then skips.
_HAS_PUNCTUATION = re.compile(
    "[" + "".join(re.escape(chr(c)) for c in sorted(_PUNCTUATION)) + "]").search

# "APT4B", "STE100", "FLR2"; "#4B" is handled by the translate table.
_GLUED_UNIT = re.compile(
    r"(APT|APARTMENT|STE|SUITE|UNIT|RM|ROOM|LOT|BLDG|FLR|FL|SPC|SPACE|TRLR|PH)(\d[\w-]*)"
)
_HAS_DIGIT = re.compile(r"\d").search
# House numbers that do not start with a digit: Wisconsin/Illinois grid numbers
# ("N62W14123", also typed "W152 N8945") and a letter before the digits ("B2210").
_GRID_NUMBER = re.compile(r"[NSEW]\d+[NSEW]\d+").fullmatch
_GRID_HALF = re.compile(r"[NSEW]\d+").fullmatch
_LETTER_NUMBER = re.compile(r"[A-Z]\d+[A-Z]?").fullmatch
# A ZIP code: 5 digits, ZIP+4 with or without its hyphen.
_ZIP = re.compile(r"\d{5}(?:-?\d{4})?").fullmatch
# "ONE N MAIN ST" is 1 N MAIN ST (only as the first word: "123 EIGHT MILE RD").
_NUMBER_WORDS: dict[str, str] = {word: str(i) for i, word in enumerate(_words(
    "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN "
    "FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN TWENTY"), start=1)}
# A directional that is the whole street name is keyed spelled out, so that
# "214 S BLVD" and "214 SOUTH BLVD" (South Boulevard) are one street.
_SPELLED_OUT: dict[str, str] = {std: word for word, std in DIRECTIONALS.items() if word != std}
_PO_WORDS = frozenset({"PO", "P", "O", "POST", "OFFICE"})
_BOX_WORDS = frozenset({"BOX", "BX"})
_PO_START = _PO_WORDS | _BOX_WORDS | {"POB", "POBOX"}
_RURAL_START = frozenset({"RR", "RFD", "RURAL", "R", "RT", "RTE", "ROUTE", "HC", "HCR",
                          "HIGHWAY", "HWY", "STAR"})
# "APT NO 5", "UNIT NUMBER 5": filler between designator and identifier.
_UNIT_NUMBER_WORDS = frozenset({"NO", "NUM", "NBR", "NUMBER"})


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class NormalizedAddress:
    """One parsed delivery line. ``kind`` is ``street``, ``po_box`` or ``rural_route``.

    ``unplaced`` is text after a comma that is neither a unit, a directional
    nor a city/state/ZIP (``100 MAIN ST, THE OAKS``): it is kept in the
    ``street_line`` and the ``key`` (two spellings may split, two doors never
    merge), and importers report it as a warning.
    """

    number: str = ""
    predirectional: str = ""
    street_name: str = ""
    suffix: str = ""
    postdirectional: str = ""
    unit_type: str = ""
    unit: str = ""
    kind: str = "street"
    unplaced: str = ""

    @property
    def street_line(self) -> str:
        """USPS-formatted delivery line, e.g. ``123 N MAIN ST APT 4B``
        (unplaced text follows a comma: ``100 MAIN ST APT 2, THE OAKS``).

        Feeding it back to :func:`normalize_address` gives the same ``key``.
        """
        return _street_line(self._line_base(), self.unit_type, self.unit,
                            self.unplaced)

    @property
    def building_line(self) -> str:
        """The delivery line without its unit: the building a door is in.
        Its ``key`` is this address's key without the ``#unit``."""
        return _street_line(self._line_base(), "", "", self.unplaced)

    def _line_base(self) -> str:
        return _base(self.number, self.predirectional, self.street_name, self.suffix,
                     self.postdirectional)

    @property
    def key(self) -> str:
        """Identity of the delivery point: the unit designator does not count
        (``APT 4B`` and ``# 4B`` are one place), the unit identifier does."""
        return _key(_key_base(self.number, self.predirectional, self.street_name, self.suffix,
                              self.postdirectional, self.unplaced), self.unit_type, self.unit)


# What a parse of the tokens gives: NormalizedAddress's fields up to ``kind``.
_Parts = tuple[str, str, str, str, str, str, str, str]
# ... and with ``unplaced``: every field, in order.
_Fields = tuple[str, str, str, str, str, str, str, str, str]
# A comma-separated segment that is no unit: (its position in the line, its
# words, whether it is a lone directional).
_Rest = tuple[int, list[str], bool]


def _base(number: str, pre: str, name: str, suffix: str, post: str) -> str:
    """The delivery line without its unit."""
    return " ".join([p for p in (number, pre, name, suffix, post) if p])


def _key_base(number: str, pre: str, name: str, suffix: str, post: str, unplaced: str) -> str:
    """The key's street part: the line without its unit, a directional street
    name spelled out, unplaced text (without its commas) last."""
    if name in _SPELLED_OUT:
        name = _SPELLED_OUT[name]
    base = " ".join([p for p in (number, pre, name, suffix, post) if p])
    if unplaced:
        extra = unplaced.replace(",", "")
        return f"{base} {extra}" if base else extra
    return base


def _street_line(base: str, unit_type: str, unit: str, unplaced: str) -> str:
    line = " ".join([p for p in (base, unit_type, unit) if p])
    if unplaced:
        return f"{line}, {unplaced}" if line else unplaced
    return line


def _key(base: str, unit_type: str, unit: str) -> str:
    unit_id = _unit_identifier([unit_type, *unit.split()]) if unit else ""
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
    """The identifier part of a unit: designators and ``#`` dropped, except a
    floor (``FL 2`` -> ``FL2``: floor 2 is not apartment 2) and the designators
    that are their own identifier (``REAR``, ``PH 2`` -> ``PH2``).

    Each designator's identifier is one part, and parts join with ``-``:
    ``BLDG 3A APT 2`` is ``3A-2``, not ``BLDG 3 APT A2`` (``3-A2``).
    """
    parts: list[str] = []
    ids: list[str] = []
    floor = False
    for tok in tokens:
        std = UNIT_DESIGNATORS.get(tok)
        if std is None:
            if not tok or tok in _UNIT_NUMBER_WORDS:
                continue
            pieces = [p for p in tok.split("-") if p]
            if floor and pieces:
                ids.append("FL")
                floor = False
            ids.extend(pieces)
        elif std != "#":
            if ids:
                parts.append(_join_alnum(ids))
                ids = []
            if std in STANDALONE_UNITS:
                ids.append(std)
            floor = std == "FL"
    if ids:
        parts.append(_join_alnum(ids))
    return "-".join(parts)


def _is_ordinal(token: str) -> bool:
    return token[-2:] in ("ST", "ND", "RD", "TH") and token[:-2].isdigit()


def _is_fraction(token: str) -> bool:
    num, slash, den = token.partition("/")
    return bool(slash) and num.isdigit() and den.isdigit()


def _is_house_number(token: str) -> bool:
    """Can ``token`` start a street address (``12``, ``12B``, ``N62W14123``,
    ``W152``, ``B2210``)? An ordinal (``3RD``) names a street or a floor."""
    if token[0].isdigit():
        return not _is_ordinal(token)
    return bool(_LETTER_NUMBER(token) or _GRID_NUMBER(token))


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


def _is_lone_id(token: str) -> bool:
    """A unit written alone after a comma or hyphen: ``12C``, ``3``, ``B``
    (not ``N``: that is a directional; not ``NC``: a state)."""
    if len(token) == 1:
        return token.isdigit() or (token.isalpha() and token not in DIRECTIONALS)
    return bool(_HAS_DIGIT(token)) and not _is_glued(token) and not _ZIP(token)


def _is_id_word(token: str) -> bool:
    """A word with a digit, or one letter (``4``, ``4B``, ``B``, not ``#`` nor
    ``APT4``): an identifier however the words around it are rewritten."""
    if len(token) == 1:
        return token.isalnum()
    return bool(_HAS_DIGIT(token)) and not _is_glued(token)


def _is_letter_id(token: str) -> bool:
    """A letter that can only be a unit's (``B``; not ``N``, nor ``I`` of ``I 95``)."""
    return (len(token) == 1 and token.isalpha() and token not in DIRECTIONALS
            and token not in _HIGHWAY_WORDS)


def _is_glued(token: str) -> bool:
    """``APT4B``, ``STE100``: a designator and its number typed as one word."""
    return token[0].isalpha() and not token.isalpha() and bool(_GLUED_UNIT.fullmatch(token))


def _is_floor_number(token: str, position: int) -> bool:
    """``3RD``, ``THIRD``, or (not as the first word, the house number) ``3``."""
    return _is_ordinal(token) or token in ORDINALS or (position > 0 and token.isdigit())


def _floor_id(word: str) -> str:
    """The identifier of a floor: ``3RD``/``THIRD`` -> ``3``."""
    word = ORDINALS.get(word, word)
    return word[:-2] if _is_ordinal(word) else word


# --------------------------------------------------------------------------- segments


def _segments(text: str) -> list[list[str]]:
    """Upper-case, strip punctuation, split into the comma-separated segments'
    tokens (empty segments dropped).

    A hyphen standing apart (``12 OAK CT - B``, ``ELM- 3RD FLOOR``) also ends a
    segment when what follows it is a unit; otherwise it is dropped.
    """
    text = text.upper()
    if _HAS_PUNCTUATION(text):
        text = text.translate(_PUNCTUATION)
    if "SAINT" in text:
        text = _SAINT.sub("ST", text)
    if "," not in text and "-" not in text:  # the common line: one segment
        tokens = text.split()
        return [tokens] if tokens else []
    segments: list[list[str]] = []
    for part in (text.split(",") if "," in text else (text,)):
        tokens = part.split()
        if not tokens:
            continue
        if "-" in part:
            segments.extend(_hyphen_segments(tokens))
        else:
            segments.append(tokens)
    if len(segments) > 2:
        _join_zip(segments)
    return segments


def _hyphen_segments(tokens: list[str]) -> list[list[str]]:
    """Split at stray hyphens that introduce a unit; split ``I-95``/``US-1``/
    ``NC-54`` into two tokens; drop other stray hyphens."""
    groups: list[list[str]] = [[]]
    for tok in tokens:
        lead, trail = tok.startswith("-"), tok.endswith("-")
        tok = tok.strip("-")
        if lead and groups[-1]:
            groups.append([])
        if tok:
            if "-" in tok:
                left, _, right = tok.partition("-")
                if left in _HIGHWAY_TRIGGERS and right[:1].isdigit():
                    groups[-1].append(left)
                    tok = right
                elif left in UNIT_DESIGNATORS or right in UNIT_DESIGNATORS:
                    groups[-1] += [p for p in tok.split("-") if p]  # "APT-4", "ST-APT"
                    tok = ""
            if tok:
                groups[-1].append(tok)
        if trail and groups[-1]:
            groups.append([])
    out = [groups[0]]
    for group in groups[1:]:
        if not group:
            continue
        if out[-1] and _unit_segment(group) is not None:
            out.append(group)
        else:
            out[-1].extend(group)
    return [g for g in out if g]


def _join_zip(segments: list[list[str]]) -> None:
    """``RALEIGH, NC, 27601``: a ZIP alone after a state goes with the state."""
    for i in range(len(segments) - 1, 1, -1):
        seg = segments[i]
        if len(seg) == 1 and _ZIP(seg[0]) and segments[i - 1][-1] in _STATE_CODES:
            segments[i - 1] = [*segments[i - 1], *seg]
            del segments[i]


def _street_segment(segments: list[list[str]]) -> int:
    """Which segment is the street: the first, unless it has no house number
    and a later one starts with one (``APT 4, 10 MAIN ST``)."""
    first = segments[0][0]
    if _is_house_number(first) or first in _PO_START or first in _RURAL_START:
        return 0
    for i in range(1, len(segments)):
        seg = segments[i]
        if len(seg) >= 2 and _is_house_number(seg[0]) and _unit_segment(seg) is None:
            return i
    return 0


def _unit_segment(seg: list[str]) -> list[str] | None:
    """The unit tokens of a segment that is a unit and nothing else
    (``APT 4``, ``#3``, ``12C``, ``B``, ``3RD FLOOR``, ``REAR``), else None."""
    first = seg[0]
    if first == "#" or first in UNIT_DESIGNATORS or _is_glued(first):
        return seg
    if len(seg) >= 2 and seg[1] in _FLOOR_WORDS and _is_floor_number(first, 1):
        return seg
    if len(seg) <= 2 and all(_is_lone_id(tok) for tok in seg):
        return ["#", *seg]
    return None


def _is_city(words: list[str]) -> bool:
    """Could ``words`` be a city (``RALEIGH``, ``WINSTON-SALEM``, ``ST LOUIS``)?"""
    if len(words) == 1 and (len(words[0]) == 1 or words[0] in DIRECTIONALS):
        return False
    return all(w.replace("-", "").isalpha() and w not in UNIT_DESIGNATORS for w in words)


def _locality_split(words: list[str]) -> tuple[list[str], bool]:
    """``RALEIGH NC 27601`` -> (``[RALEIGH]``, True); not a locality -> ([], False).
    A locality has a ZIP or a state; its city, if any, must look like one."""
    core = words[:-1] if _ZIP(words[-1]) else words
    has_zip = len(core) < len(words)
    if core and core[-1] in _STATE_CODES:
        core = core[:-1]
    elif not has_zip:
        return [], False
    if core and not _is_city(core):
        return [], False
    return core, True


def _ends_with_locality(seg: list[str]) -> bool:
    """``RALEIGH NC 27601``, ``NE 68102``, ``FL 33101``: a state and ZIP (with
    a city or not) end the segment. Read as the locality before anything else:
    ``NE`` and ``FL`` alone are a directional and a floor."""
    return len(seg) >= 2 and bool(_ZIP(seg[-1])) and seg[-2] in _STATE_CODES and (
        len(seg) == 2 or _is_city(seg[:-2]))


def _locality_start(rest: list[_Rest]) -> int:
    """How many of ``rest`` are not the trailing city/state/ZIP.

    From the end: a segment with a state or ZIP (and a city before it, if
    any, that looks like one) is the locality; a state or ZIP without a city
    takes the segment before it as the city if it looks like one. A state
    alone with no city (``100 OAK, CT``) is not taken: it may be a suffix.
    """
    end = len(rest)
    while end:
        words = rest[end - 1][1]
        city, ok = _locality_split(words)
        if not ok:
            break
        if city:
            end -= 1
            continue
        before = rest[end - 2] if end >= 2 else None
        if before is None or not _is_city(before[1]):
            if not _ZIP(words[-1]) or len(words) < 2:
                break
            end -= 1  # "NC 27601" with no city: a state and a ZIP are enough
            continue
        end -= 2
    return end


def _arrange(segments: list[list[str]]) -> tuple[list[str], list[_Rest]]:
    """The street segment with every unit segment appended (to be parsed as
    one line, as its ``street_line`` will be) and the other segments, in
    order: directionals and unplaced text. The city/state/ZIP is dropped (the
    household key takes the locality from its own columns)."""
    at = _street_segment(segments)
    street = list(segments[at])
    units: list[list[str]] = []
    rest: list[_Rest] = []
    for order, seg in enumerate(segments):
        if order == at:
            continue
        if order > at and seg[0] in _BOX_WORDS and street[0] in _RURAL_START:
            street += seg  # "RR 2, BOX 5"
            continue
        if _ends_with_locality(seg):
            rest.append((order, seg, False))
            continue
        tail: list[str] = []
        if _unit_segment(seg) is None:
            head, tail = _split_unit(seg)
            if head and tail:  # "THE OAKS APT 4": the head is read as a segment of its own
                seg = head
            else:
                tail = []
        item = _classify(order, seg, units)
        if item is not None:
            rest.append(item)
        if tail:
            units.append(tail)
    # The locality is read among the segments that are no directional: a
    # second pass sees the placed directional gone, and must read alike.
    texts = [r for r in rest if not r[2]]
    rest = texts[:_locality_start(texts)] + [r for r in rest if r[2]]
    rest.sort(key=lambda r: r[0])
    for unit in units:
        street = _append_unit(street, unit)
    return street, rest


def _classify(order: int, seg: list[str], units: list[list[str]]) -> _Rest | None:
    """A unit (added to ``units``; None returned), a directional (with a unit
    maybe: ``NW STE 700``), or other text."""
    unit = _unit_segment(seg)
    if unit is not None:
        units.append(unit)
        return None
    if seg[0] in DIRECTIONALS:
        unit = _unit_segment(seg[1:]) if len(seg) > 1 else []
        if unit is not None:  # "1800 K ST, NW STE 700"
            if unit:
                units.append(unit)
            return (order, seg[:1], True)
    return (order, seg, False)


def _append_unit(tokens: list[str], unit: list[str]) -> list[str]:
    """``tokens`` with a unit written elsewhere appended, so the two parse as
    one line. Behind ``#`` unless it would be read as a unit anyway: a
    designator with its number after a street (``APT 4``), or a word unit
    (``REAR``) after a complete one."""
    std = UNIT_DESIGNATORS.get(unit[0])
    if std == "#":
        return [*tokens, *unit]
    if std is not None and len(tokens) >= 2:
        if std in STANDALONE_UNITS:
            if len(unit) == 1 and _ends_street(tokens, len(tokens)):
                return [*tokens, *unit]
        else:
            j = 1
            while j < len(unit) and (unit[j] == "#" or unit[j] in _UNIT_NUMBER_WORDS):
                j += 1
            if j < len(unit) and _looks_like_unit_id(unit[j]):
                return [*tokens, *unit]
    return [*tokens, "#", *unit]


def _place(parts: _Parts, rest: list[_Rest]) -> _Fields:
    """Put the segments that are not units: the first directional becomes
    the post-directional if the street has none; the rest is unplaced."""
    number, pre, name, suffix, post, unit_type, unit, kind = parts
    unplaced: list[str] = []
    for _, words, is_direction in rest:
        if is_direction and not post and name and kind == "street" and _reads_back(
                (number, pre, name, suffix, DIRECTIONALS[words[0]], unit_type, unit, kind)):
            post = DIRECTIONALS[words[0]]
        else:
            unplaced.append(" ".join(words))
    return number, pre, name, suffix, post, unit_type, unit, kind, ", ".join(unplaced)


def _reads_back(parts: _Parts) -> bool:
    """Does the line of ``parts`` parse back to the same key? A directional
    from another segment is only placed if so (``... LEVEL, E`` would read
    back as the unit ``LEVEL E``); else it stays unplaced, on every pass."""
    number, pre, name, suffix, post, unit_type, unit, _ = parts
    line = _street_line(_base(number, pre, name, suffix, post), unit_type, unit, "")
    again = _parse_line(line, None)
    return _key(_key_base(*again[:5], again[8]), again[5], again[6]) == _key(
        _key_base(number, pre, name, suffix, post, ""), unit_type, unit)


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
    if i and tokens[i - 1] in _BOX_WORDS:
        while i < len(tokens) and (tokens[i] == "#" or tokens[i] in _UNIT_NUMBER_WORDS):
            i += 1  # "PO BOX # 12", "BOX NO 12"
    if i >= len(tokens) or not any(c.isdigit() for c in tokens[i]):
        return None
    # No "#" in a key but before its unit (building_household_key relies on it).
    more = [t for t in tokens[i + 1:] if t != "#"]
    name = " ".join(["PO BOX", _dehyphen(tokens[i]) or tokens[i], *more])
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
    rest = [t for t in tokens[i + 1:] if t != "#"]
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


def _floors_first(tokens: list[str]) -> list[str]:
    """``3RD FLOOR``, ``2ND FL``, ``7TH FLR`` -> ``FL 3``, ``FL 2``..., so that
    the floor reads like every other designator.

    Not when the floor word has its own number (``... 2 FL 3``: floor 3; a
    number that starts another floor, ``1ST FL 3RD LEVEL``, is not its own),
    nor when the number is already a floor's (``FL 3RD LEVEL``). Every test
    reads words that a second pass over the result sees alike: what counts
    as a number is digits or one letter, whatever highways become.
    """
    tokens = [t for i, t in enumerate(tokens)  # "FLOOR FLOOR", "FL LEVEL": one floor word
              if not (i and t in _FLOOR_WORDS and tokens[i - 1] in _FLOOR_WORDS)]
    out: list[str] = []
    for i, tok in enumerate(tokens):
        if (tok in _FLOOR_WORDS and out and _is_floor_number(out[-1], len(out) - 1)
                and not (len(out) >= 2 and out[-2] in _FLOOR_WORDS)
                and not _has_own_number(tokens, i)):
            out[-1:] = ["FL", _floor_id(out[-1])]
            continue
        out.append(tok)
    return out


def _has_own_number(tokens: list[str], i: int) -> bool:
    """Is the floor word ``tokens[i]`` followed by its own number (``FL 3``,
    ``FL # 3``), one that does not start another floor (``FL 3RD LEVEL``)?"""
    n = len(tokens)
    j = i + 1
    while j < n and (tokens[j] == "#" or tokens[j] in _UNIT_NUMBER_WORDS):
        j += 1  # "FL # 3" is written "FL 3"
    if j >= n or not _is_id_word(tokens[j]):
        return False
    after = j + 1
    return not (after < n and tokens[after] in _FLOOR_WORDS
                and _is_floor_number(tokens[j], j) and tokens[j - 1] not in _FLOOR_WORDS
                and not _has_own_number(tokens, after))


def _units_first(tokens: list[str]) -> list[str]:
    """``UNIT 204 318 N OAK ST``, ``# 4 10 MAIN ST``, ``REAR 12 OAK ST``: a unit
    written before the house number moves behind the street."""
    i = _leading_units_end(tokens)
    if 0 < i < len(tokens) - 1 and _is_house_number(tokens[i]):
        return [*tokens[i:], *tokens[:i]]
    return tokens


def _leading_units_end(tokens: list[str]) -> int:
    """Where the designators and identifiers that start ``tokens`` end (0 if
    a designator there has no plain identifier)."""
    n = len(tokens)
    i = 0
    while i < n:
        std = UNIT_DESIGNATORS.get(tokens[i])
        if std is None:
            if not _is_glued(tokens[i]):
                return i
            i += 1
            continue
        i += 1
        if std in STANDALONE_UNITS:
            continue
        while i < n and (tokens[i] == "#" or tokens[i] in _UNIT_NUMBER_WORDS):
            i += 1
        # A plain identifier ("APT 4", not "APT CO RD 5": a second pass reads
        # "CO RD" as "CR"; nor "APT I 5" for "APT INTERSTATE 5", nor "APT N").
        tok = tokens[i] if i < n else ""
        if not (_is_id_word(tok) or (std == "FL" and tok in ORDINALS)) or (
                tok in _HIGHWAY_WORDS or tok in DIRECTIONALS):
            return 0
        i += 1
        ident = _floor_id(tok) if std == "FL" else tok
        if (ident.isdigit() and i + 1 < n and _is_letter_id(tokens[i])
                and _is_house_number(tokens[i + 1])):
            i += 1  # "APT 4 B 10 MAIN ST"
    return i


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
        if std in STANDALONE_UNITS:
            nxt = tokens[i + 1] if i + 1 < n else ""
            if (not nxt or nxt in UNIT_DESIGNATORS or _looks_like_unit_id(nxt)
                    or _is_glued(nxt)) and _ends_street(tokens, i):
                return tokens[:i], tokens[i:]
            continue
        j = i + 1
        while j < n and (tokens[j] == "#" or tokens[j] in _UNIT_NUMBER_WORDS):
            j += 1  # "APT # 4", "APT NO 4"
        if j < n and (_looks_like_unit_id(tokens[j])
                      or UNIT_DESIGNATORS.get(tokens[j]) in STANDALONE_UNITS):  # "APT REAR"
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
        if (std is None or std == "#" or std in STANDALONE_UNITS or last in SUFFIXES
                or not _ends_street(tokens, len(tokens) - 1)):
            break
        tokens = tokens[:-1]
    return tokens


def _trailing_unit(tokens: list[str]) -> tuple[list[str], list[str]]:
    """``123 MAIN ST 4B``, ``55 PINE ST B``, ``123 MAIN ST 4 B`` (no
    designator): a number, or a letter that is no directional, after the
    suffix or the post-directional is a unit, except after a numbered road
    (``US HWY 1``) and a lettered avenue (``W AVENUE J``). Also a word before
    a designator that has nothing after it: ``100 MAIN ST GARAGE APT``."""
    if len(tokens) < 3:
        return tokens, []
    last = tokens[-1]
    if len(tokens) >= 4:
        if _is_letter_id(last) and tokens[-2].isdigit():
            street, unit = _trailing_unit(tokens[:-1])
            return (street, [*unit, last]) if unit else (tokens, [])
        if _is_word_unit(tokens):
            return tokens[:-2], ["#", tokens[-2]]
    letter = not _HAS_DIGIT(last)
    if letter and (len(last) != 1 or not last.isalpha() or last in DIRECTIONALS):
        return tokens, []
    at = len(tokens) - 2
    if tokens[at] in DIRECTIONALS:
        if len(tokens) < 4:
            return tokens, []
        at -= 1
    before = tokens[at]
    if before not in SUFFIXES or SUFFIXES[before] in _NUMBERED_ROADS:
        return tokens, []
    if letter and tokens[at - 1] in DIRECTIONALS and (at == 1 or before in _NAME_PREFIX):
        return tokens, []  # "W AVENUE J" is a street; "N MAIN ST B" has a unit
    return tokens[:-1], ["#", last]


def _is_word_unit(tokens: list[str]) -> bool:
    """``... ST GARAGE APT``: a plain word, then a designator that needs a
    number and has none, after a complete street."""
    last, word = tokens[-1], tokens[-2]
    return (UNIT_DESIGNATORS.get(last) not in (None, "#", "FL", *STANDALONE_UNITS)
            and last not in SUFFIXES and word.isalpha() and word not in SUFFIXES
            and word not in DIRECTIONALS and word not in UNIT_DESIGNATORS
            and word not in _UNIT_NUMBER_WORDS
            and _ends_street(tokens, len(tokens) - 2))


def _parse_unit(tokens: list[str]) -> tuple[str, str]:
    """Unit tokens (designator first) -> (``unit_type``, ``unit``)."""
    if not tokens:
        return "", ""
    std = UNIT_DESIGNATORS.get(tokens[0])
    if std is None:
        std, rest = "#", tokens
    elif std in STANDALONE_UNITS:
        std, rest = "", tokens
    else:
        rest = tokens[1:]
    words: list[str] = []
    floor = std == "FL"
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
            if inner == "FL" and (words[-1:] == ["FL"] or (std == "FL" and not words)):
                continue  # "FL FL 3" is "FL 3"
            words.append(inner)
            floor = inner == "FL"
            continue
        glued = _GLUED_UNIT.fullmatch(tok) if tok[0].isalpha() and not tok.isalpha() else None
        if glued:  # "# APT4B": read as "APT 4B" wherever it appears
            words += [UNIT_DESIGNATORS[glued.group(1)], glued.group(2)]
            floor = False
            continue
        word = _dehyphen(tok)
        if floor:
            word, floor = _floor_id(word), False
        words.append(word)
    # Trailing "#" and designators with nothing after them ("BLDG 3 APT",
    # "LOWER LEVEL") identify nothing.
    while words and (words[-1] == "#" or UNIT_DESIGNATORS.get(words[-1], "") not in (
            "", *STANDALONE_UNITS)):
        words.pop()
    words = [w for w in words if w]
    if not _unit_identifier(words):
        return "", ""  # designators only ("APT #"): nothing identifies a door
    return std, " ".join(words)


def _split_number(tokens: list[str]) -> tuple[str, list[str]]:
    """House number (with a ``1/2`` fraction) and the remaining tokens.

    An ordinal (``1ST``) is a street name, never a house number: ``FIRST ST``
    is written ``1ST ST`` and must read back the same way. Grid numbers
    (``N62W14123``, ``W152 N8945`` -> ``W152N8945``), a letter first
    (``B2210``) and a number word first (``ONE``) are house numbers too.
    """
    first = tokens[0]
    if first.isdigit():  # the common case, "123", skips the checks below
        number, rest = first, tokens[1:]
    elif first[0].isdigit():
        if _is_ordinal(first):
            return "", tokens
        number, rest = _hyphenated_number(first), tokens[1:]
    elif len(tokens) > 1 and _GRID_HALF(first) and _GRID_HALF(tokens[1]):
        number, rest = first + tokens[1], tokens[2:]
    elif _LETTER_NUMBER(first) or _GRID_NUMBER(first):
        number, rest = first, tokens[1:]
    elif first in _NUMBER_WORDS and len(tokens) > 1 and not tokens[1][0].isdigit():
        number, rest = _NUMBER_WORDS[first], tokens[1:]
    else:
        return "", tokens
    if rest and _is_fraction(rest[0]):
        return f"{number} {rest[0]}", rest[1:]
    return number, rest


def _hyphenated_number(token: str) -> str:
    """``123-A -> 123A``, ``1418-1/2 -> 1418 1/2``; ``12-14`` stays a range."""
    head, _, tail = token.rpartition("-")
    if head.isdigit() and _is_fraction(tail):
        return f"{head} {tail}"
    return _dehyphen(token)


def _number_letter(number: str, tokens: list[str]) -> tuple[str, list[str]]:
    """``214 B SOUTH BLVD`` -> ``214B``: a letter between the number and a
    street name belongs to the number. ``214 B ST`` and ``214 B ST APT 4``
    (B Street), ``214 E MAIN`` (a directional) and ``214 I 95`` keep it.

    Decided before anything else reads the street, on words that read the
    same once abbreviated, so that ``214B SOUTH BLVD`` parses back alike.
    """
    letter, after = tokens[0], tokens[1]
    if not letter.isalpha() or letter in DIRECTIONALS or not number[0].isdigit() or (
            not number[-1].isdigit() or " " in number):
        return number, tokens
    if after[0].isdigit() or after == "#" or after in UNIT_DESIGNATORS or (
            after in _HIGHWAY_WORDS or _is_glued(after)):
        return number, tokens
    if after in SUFFIXES:  # "B ST", "B ST NW", "B ST APT 4", "B ST 4": B Street
        then = tokens[2] if len(tokens) > 2 else ""
        if (not then or then in DIRECTIONALS or then == "#" or then in UNIT_DESIGNATORS
                or then in _SUFFIX_OR_UNIT or _is_id_word(then) or _is_glued(then)):
            return number, tokens
    return number + letter, tokens[1:]


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
    number, pre, name, suffix, post, unit_type, unit_text, _, unplaced = _parse_line(line, unit)
    street_line = _street_line(_base(number, pre, name, suffix, post), unit_type, unit_text,
                               unplaced)
    key = _key(_key_base(number, pre, name, suffix, post, unplaced), unit_type, unit_text)
    return key, street_line, unit_text


def unplaced_part(line: str | None, unit: str | None = None) -> str:
    """The text of ``line`` that :func:`normalize_address` could not place
    (``""`` for almost every line), for an importer's warning.

    Only text after a comma (or ``;``) can be unplaced, so a line without one
    costs a substring test, not a parse.
    """
    if not line or ("," not in line and ";" not in line):
        return ""
    return normalize_address(line, unit).unplaced


def _parse_line(line: str, unit: str | None) -> _Fields:
    segments = _segments(line)
    rest: list[_Rest] = []
    if len(segments) > 1:
        tokens, rest = _arrange(segments)
    else:
        tokens = segments[0] if segments else []
    if unit:
        extra = [tok for segment in _segments(unit) for tok in segment]
        if extra:
            tokens = _with_unit(tokens, extra)
    parts = _parse_tokens(tokens)
    if not rest:
        return parts + ("",)
    if not any(parts[:7]) and len(segments) > 1:
        # The street segment said nothing ("#, OAK LN"): the next one is the street.
        return _parse_line(", ".join(" ".join(seg) for seg in segments[1:]), unit)
    return _place(parts, rest)


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
    extra_ids = {_unit_identifier(extra)}
    if not _FLOOR_WORDS.isdisjoint(extra):  # "3RD FLOOR" is "FL 3"
        extra_ids.add(_unit_identifier(_floors_first(["#", *extra])))
    extra_ids.discard("")
    if not extra_ids:
        return tokens
    own = _parse_tokens(tokens)
    if own[6] and not extra_ids.isdisjoint((_unit_identifier(own[6].split()),
                                            _unit_identifier([own[5], *own[6].split()]))):
        return tokens
    if not tokens:
        return extra if extra[0] in UNIT_DESIGNATORS else ["#", *extra]
    return _append_unit(tokens, extra)


def _po_box_or_route(tokens: list[str]) -> _Parts | None:
    if tokens[0] in _PO_START:
        special = _parse_po_box(tokens)
        if special is not None:
            return special
    if tokens[0] in _RURAL_START:
        return _parse_rural_route(tokens)
    return None


def _unusual_start(tokens: list[str]) -> list[str]:
    """Floors rewritten, and a unit written before the number moved behind
    the street (then the floors again: their neighbours changed)."""
    floors = not _FLOOR_WORDS.isdisjoint(tokens)
    if floors:
        tokens = _floors_first(tokens)
    first = tokens[0]
    if first in UNIT_DESIGNATORS or _is_glued(first):
        tokens = _units_first(tokens)
        if floors and tokens[0] != first:
            tokens = _floors_first(tokens)
    return tokens


def _parse_tokens(tokens: list[str]) -> _Parts:
    if not tokens:
        return ("", "", "", "", "", "", "", "street")
    # The common line starts with a plain house number: no PO box, rural
    # route or unit before the number to look for.
    rewrite = True
    if tokens[0].isdigit():
        rewrite = not _REWRITTEN_WORDS.isdisjoint(tokens)
        if rewrite and not _FLOOR_WORDS.isdisjoint(tokens):
            tokens = _floors_first(tokens)
    else:
        special = _po_box_or_route(tokens)
        if special is not None:
            return special
        tokens = _unusual_start(tokens)
    number, tokens = _split_number(tokens)
    if number and len(tokens) >= 2 and len(tokens[0]) == 1:
        number, tokens = _number_letter(number, tokens)
    if rewrite and not _HIGHWAY_TRIGGERS.isdisjoint(tokens):
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


def building_household_key(key: str) -> str:
    """The household key of the building a door is in: ``key`` without its unit.

    Parcels are usually one per building, with a site address without a unit,
    so a flat (``100 MAIN ST #3D|27601``) finds its parcel through its
    building's key (``100 MAIN ST|27601``). A key is ``street[ #unit]|locality``
    (see :func:`_key` and :func:`address_household_key`); a key without a unit
    is its own building.
    """
    street, bar, locality = key.partition("|")
    base, hash_, _unit = street.partition(" #")
    if not hash_:
        return key
    return f"{base}{bar}{locality}"
