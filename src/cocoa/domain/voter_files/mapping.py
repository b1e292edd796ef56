"""Which column of a hand-made or vendor file each voter field comes from.

The official layouts have fixed columns. Everything else (a campaign's
spreadsheet, a vendor export) is read with the simple layout, whose columns
are chosen per file: a ``mapping`` the user gives (our field -> their column)
wins, otherwise the first of the field's aliases the header has
(:data:`~.layouts.SIMPLE_ALIASES`). Binding happens once per file and yields
an ordinary :class:`Layout` with exactly one column per field, so the row
reader stays as fast as for an official layout and the preview can show the
user exactly which column feeds which field.

A file whose columns give no street address is refused here (422
``unmappable_file``): without an address there is no household, and without
an id or an address a voter could only be keyed by name, which silently
merges different people who share one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

from cocoa.domain.errors import InputError, Problem
from cocoa.domain.voter_files.header import Header
from cocoa.domain.voter_files.layouts import SIMPLE_ALIASES, AddressSpec, Const, Layout

MAPPABLE_FIELDS: tuple[str, ...] = tuple(SIMPLE_ALIASES)
MAPPING_EXAMPLE = '{"voter_id": "Voter ID", "street": "Street Address", "unit": "Apt"}'
_NEEDED = ("first_name", "last_name", "street")
MAX_MAPPING_ENTRIES = 64


def parse_mapping(value: object) -> dict[str, str | None] | None:
    """A mapping as sent (a JSON object, or its text from a form field),
    checked: known fields only, column names as text (null means "no column
    for this field", e.g. to ignore an ``ID`` column that is no voter id)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            raise _invalid("the mapping is nested too deeply to read") from None
        except ValueError as exc:
            raise _invalid(f"the mapping is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _invalid("the mapping must be a JSON object of our field -> your column")
    if len(value) > MAX_MAPPING_ENTRIES:
        raise _invalid(f"the mapping has {len(value)} entries (at most {MAX_MAPPING_ENTRIES})")
    unknown = [str(key)[:64] for key in value if key not in MAPPABLE_FIELDS]
    if unknown:
        raise _invalid(f"unknown field(s) {', '.join(map(repr, unknown))}; the fields are "
                       f"{', '.join(MAPPABLE_FIELDS)}", unknown_fields=unknown)
    bad = [key for key, column in value.items()
           if column is not None and (not isinstance(column, str) or not column.strip())]
    if bad:
        raise _invalid(f"the column for {', '.join(map(repr, bad))} must be a column name "
                       "(text) or null")
    return {key: column.strip() if isinstance(column, str) else None
            for key, column in value.items()}


def _invalid(what: str, **details: object) -> InputError:
    return InputError(f"Invalid mapping: {what}. Example: {MAPPING_EXAMPLE}.",
                      code="invalid_mapping", problem=Problem.UNPROCESSABLE,
                      details={"valid_fields": list(MAPPABLE_FIELDS), **details})


def bind_columns(layout: Layout, header: Header,
                 mapping: Mapping[str, str | None] | None) -> tuple[Layout, dict[str, str]]:
    """``layout`` with one column per field for this file's ``header``, and
    the columns chosen (our field -> their column, as the header spells it).

    Raises 422 naming the mapped columns the header lacks, or, when no first
    name, last name or street address column is found, naming the columns
    seen and the fields needed (``unmappable_file``).
    """
    mapping = mapping or {}
    absent = [c for c in mapping.values() if c is not None and header.position(c) is None]
    if absent:
        raise InputError(
            f"The mapping names column(s) the file does not have: "
            f"{', '.join(repr(c[:60]) for c in absent)}. The file's columns are: {_listed(header)}.",
            code="unknown_column", problem=Problem.UNPROCESSABLE,
            details={"missing": absent, "columns": list(header.names)})
    chosen = _choose(header, mapping)
    lacking = [name for name in _NEEDED if name not in chosen]
    if lacking:
        raise unmappable(header, lacking)
    return _bound(layout, chosen, len(header.names)), chosen


def _choose(header: Header, mapping: Mapping[str, str | None]) -> dict[str, str]:
    """Mapped fields first; then each other field's first alias present whose
    column no other field took (so ``Address`` is not both street and unit)."""
    chosen: dict[str, str] = {}
    taken: set[int] = set()
    for name, column in mapping.items():
        if column is not None and (pos := header.position(column)) is not None:
            chosen[name] = header.names[pos]
            taken.add(pos)
    for name, aliases in SIMPLE_ALIASES.items():
        if name in mapping:
            continue
        for alias in aliases:
            pos = header.position(alias)
            if pos is not None and pos not in taken:
                chosen[name] = header.names[pos]
                taken.add(pos)
                break
    return {name: chosen[name] for name in MAPPABLE_FIELDS if name in chosen}


def _bound(layout: Layout, chosen: Mapping[str, str], width: int) -> Layout:
    def source(name: str) -> tuple[str, ...]:
        return (chosen[name],) if name in chosen else ()

    return replace(
        layout, id_column=chosen.get("voter_id"), id_aliases=(), record_width=width,
        fields={name: source(name) for name in layout.fields},
        residence=AddressSpec(street=source("street"), unit=source("unit"),
                              city=source("city"), state=source("state"),
                              zip_code=source("zip")),
    )


def unmappable(header: Header, lacking: list[str]) -> InputError:
    """422: the header gives no column for fields an import cannot do without."""
    shown = _listed(header)
    example = {name: f"<your {name.replace('_', ' ')} column>" for name in lacking}
    return InputError(
        f"Cannot tell which column holds the {', '.join(f.replace('_', ' ') for f in lacking)}: "
        f"the file's columns are {shown}. A voter import needs first name, last name and a "
        "street address (voters are identified by an id column, or else by name and address "
        "and date of birth, never by name alone). Send a `mapping` naming your columns, "
        f"e.g. {json.dumps(example)}, or rename the header.",
        code="unmappable_file", problem=Problem.UNPROCESSABLE,
        details={"columns": list(header.names[:200]), "needed": lacking,
                 "fields": list(MAPPABLE_FIELDS)})


def _listed(header: Header, most: int = 40, width: int = 60) -> str:
    """The header's columns for a message: bounded, whatever the header."""
    names = [n if len(n) <= width else n[:width] + "..." for n in header.names[:most]]
    return ", ".join(names) + (f" ... ({len(header.names)} columns)" if len(header.names) > most else "")


def official_columns(layout: Layout, header: Header) -> dict[str, str]:
    """For an official layout: our field -> the column it is read from (the
    first present when a field has candidates), for the preview."""
    def first(source: object) -> str | None:
        names = (source,) if isinstance(source, str) else source
        if isinstance(names, Const) or not isinstance(names, tuple):
            return None
        return next((header.names[p] for n in names if (p := header.position(n)) is not None),
                    None)

    used: dict[str, str] = {}
    if layout.id_column and (pos := header.position(layout.id_column)) is not None:
        used["voter_id"] = header.names[pos]
    for name, source in layout.fields.items():
        if (column := first(source)) is not None:
            used[name] = column
    res = layout.residence
    street = [header.names[p] for c in res.street if (p := header.position(c)) is not None]
    unit = [header.names[p] for c in res.unit if (p := header.position(c)) is not None]
    if street:
        used["street"] = " + ".join(street)
    if unit:
        used["unit"] = " + ".join(unit)
    for name, source in (("city", res.city), ("state", res.state), ("zip", res.zip_code)):
        if (column := first(source)) is not None:
            used[name] = column
    return used
