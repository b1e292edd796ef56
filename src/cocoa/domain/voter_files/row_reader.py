"""Turning one line of a file into a voter row, or saying why not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import lru_cache
from operator import itemgetter
from typing import Any

from cocoa.domain.addresses import unplaced_part
from cocoa.domain.voter_files.header import Header
from cocoa.domain.voter_files.issues import (
    MAX_HOUSEHOLD_KEY,
    MAX_ID_LENGTH,
    RowIssue,
    address_too_long,
    address_unplaced,
    bad_value,
    check_id,
    decoded_as_fallback,
    line_too_long,
    missing_address,
    no_household,
    stray_quote_kept,
)
from cocoa.domain.voter_files.keys import Residence, residence, simple_csv_key
from cocoa.domain.voter_files.layouts import Const, DateOrder, Layout, Source
from cocoa.domain.voter_files.limits import MAX_LINE_BYTES
from cocoa.domain.voter_files.lines import Line
from cocoa.domain.voter_files.records import CANONICAL_FIELDS, RecordJson, VoterRecord
from cocoa.domain.voter_files.split import split_line

_RESIDENCE_FIELDS = ("res_street", "res_city", "res_state", "res_zip", "mail_address")
_SLOT = {name: i for i, name in enumerate(CANONICAL_FIELDS)}
_FIRST_NAME, _LAST_NAME, _EMAIL, _PHONE, _BIRTH_DATE, _BIRTH_YEAR = (
    _SLOT["first_name"], _SLOT["last_name"], _SLOT["email"], _SLOT["phone"],
    _SLOT["birth_date"], _SLOT["birth_year"])
_RES_STREET, _RES_CITY, _RES_STATE, _RES_ZIP, _MAIL_ADDRESS = (_SLOT[n] for n in _RESIDENCE_FIELDS)

ParsedRow = tuple[str, list[Any], list[str], "Residence | None", "list[RowIssue] | tuple[()]"]
"""What :meth:`RowReader.parse_row` gives for a good row: ``(external_id,
canonical values, source values, residence, warnings)``."""


def _ascii_compatible(encoding: str) -> bool:
    """Does ``encoding`` decode every ASCII byte to the same character?"""
    ascii_bytes = bytes(range(128))
    try:
        return ascii_bytes.decode(encoding) == ascii_bytes.decode("ascii")
    except UnicodeDecodeError:
        return False


HOME_CACHE_SIZE = 200_000  # distinct address spellings a reader remembers
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
        self._id_name = layout.id_column or next(
            (a for a in layout.id_aliases if header.position(a) is not None), None)
        self._id_pos = header.position(self._id_name) if self._id_name else None
        fields = {name: self._locate(src) for name, src in layout.fields.items()}
        unknown = set(fields) - set(CANONICAL_FIELDS)
        if unknown:
            raise ValueError(f"layout {layout.name}: unknown canonical fields {sorted(unknown)}")
        # One-column fields (nearly all) take a fast path in ``parse_row``: one
        # C-level pick of their values, one comprehension to clean them, one
        # C-level spread of the results into their canonical slots.
        single = [(n, w[0]) for n, w in fields.items() if isinstance(w, tuple) and len(w) == 1]
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
        self._build_pick(single)
        self._mail_pick = _picker(self._mail)
        self._delimiter = layout.delimiter.encode("ascii")
        self._quoted_delimiter = b'"' + self._delimiter + b'"'
        # Only then can no line be undecodable, so a byte-level split is exact.
        self._latin1_last = layout.encodings[-1] == "latin-1"
        # Then a pure-ASCII line decodes the same whichever encoding would win.
        self._ascii_first = _ascii_compatible(layout.encodings[0])
        self._homes: dict[str, Residence | None] = {}
        # Per date order: text -> its date (None if not one); dates repeat a lot.
        self._parsed_dates: dict[str, dict[str, date | None]] = {"MDY": {}, "YMD": {}, "ANY": {}}

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
        one string instead of a tuple of five takes less memory.
        """
        key = "\x00".join((street or "", unit or "", city or "", state or "", zip_code or ""))
        home = self._homes.get(key, _MISSING)
        if home is _MISSING:
            if len(self._homes) >= HOME_CACHE_SIZE:
                self._homes.clear()  # bounded memory; rows with one address are close
            home = self._homes[key] = residence(street, unit, city, state, zip_code)
        return home

    def _build_pick(self, single: list[tuple[str, int]]) -> None:
        """The one C-level pick of ``parse_row``: the one-column fields, then
        (when each is at most one column, as in every official layout) the
        residence's street, unit, city, state and ZIP, which the same
        comprehension cleans exactly as ``_join``/``_value`` would, so a row
        makes no per-part call for them. ``_res_pick`` then reads the five
        from the cleaned values (a missing part reads the trailing None)."""
        positions = [pos for _, pos in single]
        names = [n for n, _ in single]
        parts = (self._street, self._unit, self._city, self._state, self._zip)
        simple = all(isinstance(p, (list, tuple)) and len(p) <= 1 for p in parts)
        self._res_pick: Callable[[list[Any]], tuple[Any, ...]] | None = None
        if simple:
            extra = [p[0] for p in parts if p]  # type: ignore[index]
            sentinel = len(positions) + len(extra)
            slots, i = [], len(positions)
            for p in parts:
                slots.append(i if p else sentinel)
                i += bool(p)
            positions += extra
            self._res_pick = _picker(slots)
        else:
            sentinel = len(positions)
        self._pick = _picker(positions)
        self._spread = _picker([names.index(n) if n in names else sentinel
                                for n in CANONICAL_FIELDS])

    def _locate(self, source: Source) -> Const | tuple[int, ...]:
        if isinstance(source, Const):
            return source
        names = (source,) if isinstance(source, str) else source
        return tuple(p for n in names if (p := self.header.position(n)) is not None)

    def decode(self, line: Line) -> str | RowIssue:
        raw = line.raw
        if len(raw) > MAX_LINE_BYTES:  # only its start was read: see iter_lines
            return line_too_long(line.number)
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
                # non-UTF-8 line for the garbage collector (a large share of
                # the parse's CPU on a Latin-1 file).
                start, end = exc.start, exc.end
        return RowIssue(line.number, "undecodable",
                        f"row {line.number}: bytes {raw[start:end]!r} at "
                        f"byte {start} are not valid in any of "
                        f"{', '.join(self.layout.encodings)}; save the file as UTF-8")

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
        source = values  # kept exactly as given
        if line.span > 1:  # a multi-line record: line breaks in a cell are spaces in the fields
            values = [" ".join(v.split()) for v in values]
        warnings: list[RowIssue] | tuple[()] = [stray_quote_kept(line.number)] if stray_quote else ()
        if self.layout.warn_fallback and not line.raw.isascii() and not _utf8(line.raw):
            warnings = [*warnings, decoded_as_fallback(line.number, self.layout.encodings[-1])]
        id_pos = self._id_pos
        if id_pos is not None:
            external_id = values[id_pos].strip()
            if not external_id or len(external_id) > MAX_ID_LENGTH:
                return check_id(line.number, external_id, self._id_name)  # type: ignore[return-value]
        cleaned = [(" ".join(text.split()) if "  " in text or "\t" in text else text.strip())
                   or None for text in self._pick(values)]
        cleaned.append(None)  # what the slots of fields the layout lacks get
        row: list[Any] = list(self._spread(cleaned))
        for slot, where in self._other:
            row[slot] = self._value(values, where)
        if self._dates or self._integers:
            warnings = self._convert(line.number, row, warnings)
        if self._res_pick is not None:
            street, unit, city, state, zip_code = self._res_pick(cleaned)
        else:
            street, unit = _join(values, self._street), _join(values, self._unit)
            city, state = self._value(values, self._city), self._value(values, self._state)
            zip_code = self._value(values, self._zip)
        row[_RES_STREET] = f"{street} {unit}" if street and unit else street
        row[_RES_CITY], row[_RES_STATE], row[_RES_ZIP] = city, state, zip_code
        row[_MAIL_ADDRESS] = _join_picked(self._mail_pick(values), ", ") if self._mail else None
        home = self.residence(street, unit, city, state, zip_code)
        if home is None and self.layout.needs_address:
            if id_pos is None:  # name alone would merge namesakes: refuse the row
                return missing_address(line.number)
            warnings = [*warnings, no_household(line.number)]
        if id_pos is None:
            born = row[_BIRTH_DATE] or row[_BIRTH_YEAR]
            external_id = simple_csv_key(
                _str(row[_FIRST_NAME]), _str(row[_LAST_NAME]), home.key if home else None,
                _str(row[_EMAIL]), _str(row[_PHONE]), str(born) if born else None)
        if home is not None and (unplaced := unplaced_part(street, unit)):
            warnings = [*warnings, address_unplaced(line.number, unplaced)]
        if home is not None and len(home.key) > MAX_HOUSEHOLD_KEY:
            warnings = [*warnings, address_too_long(line.number, home.key)]
            home = None
        return external_id, row, source, home, warnings

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
                    warnings = [*warnings, bad_value(
                        row, "bad_date", name, text,
                        _EXPECTED_DATE[order])]
        for slot, name in self._integers:
            text = values[slot]
            if isinstance(text, str):
                number = values[slot] = int(text) if text.isdecimal() and len(text) <= 9 else None
                if number is None:
                    warnings = [*warnings, bad_value(row, "bad_number", name, text,
                                                      "a whole number")]
        return warnings


_EXPECTED_DATE = {"MDY": "MM/DD/YYYY", "YMD": "YYYY-MM-DD", "ANY": "YYYY-MM-DD or MM/DD/YYYY"}


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


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


@lru_cache(maxsize=65_536)  # a file has a few thousand distinct dates
def parse_date(text: str, order: DateOrder) -> date | None:
    """``MM/DD/YYYY`` or ``YYYY-MM-DD`` without ``strptime`` (which costs
    more than the rest of a row); a time part after a space is ignored."""
    text = text.split(" ", 1)[0]
    if order == "ANY":
        order = "YMD" if "-" in text else "MDY"
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
