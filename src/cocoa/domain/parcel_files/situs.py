"""A parcel's site address and its household key."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from cocoa.domain.addresses import household_key
from cocoa.domain.parcel_files.mapping import FieldMapping


@dataclass(frozen=True, slots=True)
class Situs:
    """A parcel's site address as the file spells it, plus its household key."""

    address: str | None  # raw street line (with unit), for display
    key: str | None  # household_key, or None for a missing/placeholder address


_PLACEHOLDER = re.compile(
    r"^\s*(0+\s|$)|\b(DEFAULT|UNKNOWN|UNASSIGNED|NO\s+SITUS|NOT\s+ASSIGNED|NONE)\b",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")


def situs_of(attributes: dict[str, Any], mapping: FieldMapping) -> Situs:
    """Build the situs address and its key with the shared household key.

    Using :func:`household_key` (the same function voter import uses) is what
    makes address linking a plain equality join. Placeholder addresses such as
    ``0 DEFAULT STREET`` get no key, so they never attract households.
    """
    line = field_text(attributes, mapping.address_field)
    unit = field_text(attributes, mapping.unit_field)
    if not line:
        line = " ".join(p for p in (
            field_text(attributes, f) for f in (mapping.number_field, mapping.prefix_field,
                                            mapping.street_field, mapping.type_field,
                                            mapping.suffix_field)) if p)
    line = _SPACES.sub(" ", line).strip()
    if not line:
        return Situs(None, None)
    if unit and line.upper().split(" ")[-1] == unit.upper():
        unit = ""  # the line already ends with the unit
    display = f"{line} #{unit}" if unit else line
    if _PLACEHOLDER.search(line):
        return Situs(display, None)
    state = field_text(attributes, mapping.state_field) or mapping.state
    key = household_key(line, field_text(attributes, mapping.city_field) or None, state or None,
                        field_text(attributes, mapping.zip_field) or None, unit or None)
    return Situs(display, key)


def field_text(attributes: dict[str, Any], column: str | None) -> str:
    """A column's value as trimmed text ('' when absent); 12.0 reads as '12'."""
    if not column:
        return ""
    value = attributes.get(column)
    if type(value) is str:  # the common case first: this runs ~6 times per feature
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else (str(int(value)) if value.is_integer() else str(value))
    return str(value).strip()
