"""How a row is keyed: its household, and the voter when the file has no id."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from cocoa.domain.addresses import locality_key, normalize_zip, street_parts


class Residence(NamedTuple):
    """A normalised residence: the household it belongs to.

    A named tuple of strings, so the garbage collector stops tracking it: a
    reader caches tens of thousands of them, and every full collection would
    otherwise walk them all, over and over during an import.
    """

    key: str
    street_line: str
    unit: str | None
    city: str | None
    state: str | None
    zip_code: str | None


def residence(street: str | None, unit: str | None, city: str | None, state: str | None,
              zip_code: str | None) -> Residence | None:
    """The normalised residence of one row's address columns (None without a
    street). :class:`RowReader` caches it per distinct spelling."""
    if not street:
        return None
    # The caller caches; one parse for both (= parse_address's key, street_line
    # and unit, and address_household_key).
    street_key, street_line, unit_text = street_parts(street, unit)
    zip5 = normalize_zip(zip_code)
    return Residence(f"{street_key}|{locality_key(city, state, zip5)}", street_line or street,
                     unit_text or None, city, state.upper() if state else None, zip5 or None)


def simple_csv_key(first: str | None, last: str | None, household: str | None,
                   email: str | None, phone: str | None, born: str | None = None) -> str:
    """The stable voter key for files without a voter id.

    ``sc:`` + the first 32 hex digits of SHA-256 over the upper-cased,
    space-collapsed first and last name and the household key (so the same
    person at the same residence, however the address is spelled, is one
    voter). Without an address the lower-cased email stands in for the
    household, then the phone digits. Two different people with the same name
    at the same address collapse into one unless the file has a date (or year)
    of birth, which then joins the material (only then, so keys of files
    without one stay stable); the import reports such repeats as warnings.
    Rows without an address are refused by the importer (``missing_address``).
    """
    anchor = household or (email or "").strip().lower() or "".join(
        ch for ch in (phone or "") if ch.isdigit())
    material = "|".join((_name_key(first), _name_key(last), anchor, *((born,) if born else ())))
    return "sc:" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def _name_key(name: str | None) -> str:
    return " ".join((name or "").upper().split())
