"""A file's header row: its columns, and which layout it belongs to.

Column names are matched loosely (case, spaces, underscores and hyphens are
ignored), so ``FirstName`` finds ``first_name``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from cocoa.domain.errors import InputError, Problem
from cocoa.domain.voter_files.layouts import LAYOUTS, SIMPLE_ALIASES, Layout
from cocoa.domain.voter_files.limits import MAX_HEADER_COLUMNS, too_many_columns
from cocoa.domain.voter_files.split import split_line

UTF8_BOM = b"\xef\xbb\xbf"
_HEADER_LOOSE = re.compile(r"[\s_\-]+")
_DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}
SNIFFED_DELIMITERS = (",", ";", "|", "\t")


def _loose(name: str) -> str:
    return _HEADER_LOOSE.sub("", name.strip().lstrip("\ufeff")).casefold()


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
    repeat was quadratic in a header of one repeated name.)
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
    # our field -> the file's column it is read from (see :mod:`.mapping`)
    columns_used: Mapping[str, str] = field(default_factory=dict)


def sniff_delimiter(text: str) -> str:
    """The delimiter of a hand-made or vendor header: whichever of comma,
    semicolon, pipe and tab occurs most often outside quotes (comma on a tie
    or when there is none: a one-column header)."""
    outside = re.sub(r'"[^"]*"', "", text)
    counts = {d: outside.count(d) for d in SNIFFED_DELIMITERS}
    best = max(SNIFFED_DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def with_sniffed_delimiter(layout: Layout, text: str) -> Layout:
    """``layout`` with the header's own delimiter when its columns are chosen
    per file (the simple layout); the official layouts keep theirs."""
    if not layout.bind:
        return layout
    delimiter = sniff_delimiter(text)
    return layout if delimiter == layout.delimiter else replace(layout, delimiter=delimiter)


def missing_required(header: Header, layout: Layout) -> list[str]:
    """The required columns ``header`` lacks; for a per-file layout a
    required field is present under any of its aliases (``First`` is a first
    name)."""
    if not layout.bind:
        return header.missing(layout.required)
    return [name for name in layout.required
            if all(header.position(alias) is None
                   for alias in SIMPLE_ALIASES.get(name, (name,)))]


def detect_layout(header: str | bytes) -> Detection:
    """Pick the layout whose required columns the header has.

    Several may match (an NC header also has ``first_name,last_name``, which is
    all simple CSV needs), so the most specific wins: the layout with the most
    required columns present, then the most documented columns present.
    """
    text = decode_header(header)
    scored: list[tuple[int, int, Layout, Header]] = []
    notes: list[str] = []
    for known_layout in LAYOUTS.values():
        layout = with_sniffed_delimiter(known_layout, text)
        parsed = parse_header(text, layout)
        missing = missing_required(parsed, layout)
        if missing:
            notes.append(f"{layout.name}: missing {', '.join(missing)}")
            continue
        known = len(layout.columns) - len(parsed.missing(layout.columns))
        scored.append((len(layout.required), known, layout, parsed))
    if not scored:
        raise InputError(
            "Could not recognise the voter file layout from its header ("
            + "; ".join(notes) + "). Pick a format explicitly, name your columns with "
            '`mapping` (e.g. {"first_name": "Given", "last_name": "Family", "street": '
            '"Residence"}), or fix the header.',
            code="unknown_layout", problem=Problem.UNPROCESSABLE, details={"candidates": notes},
        )
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    _, known, layout, parsed = scored[0]
    others = [s[2].name for s in scored[1:]]
    reason = (f"detected {layout.name}: header has all {len(layout.required)} required columns "
              f"and {known} of its {len(layout.columns)} documented columns")
    if others:
        reason += f"; also compatible with {', '.join(others)} but {layout.name} is more specific"
    return Detection(layout, parsed, reason)


def decode_header(header: str | bytes) -> str:
    """The header as text; NUL bytes are dropped, as :meth:`RowReader.decode`
    drops them from data rows."""
    if isinstance(header, str):
        return header.lstrip("\ufeff").replace("\x00", "")
    raw = header.removeprefix(UTF8_BOM).replace(b"\x00", b"")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")
