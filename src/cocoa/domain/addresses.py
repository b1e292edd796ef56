"""US street address normalisation (USPS Publication 28) and household keys.

PLACEHOLDER implementation: the public functions and their signatures are the
contract; the real normaliser replaces the bodies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class NormalizedAddress:
    number: str = ""
    predirectional: str = ""
    street_name: str = ""
    suffix: str = ""
    postdirectional: str = ""
    unit_type: str = ""
    unit: str = ""

    @property
    def street_line(self) -> str:
        """USPS-formatted delivery line, e.g. ``123 N MAIN ST APT 4B``."""
        parts = [self.number, self.predirectional, self.street_name, self.suffix,
                 self.postdirectional, self.unit_type, self.unit]
        return " ".join(p for p in parts if p)

    @property
    def key(self) -> str:
        """Identity of the delivery point: the unit designator does not count
        (``APT 4B`` and ``# 4B`` are one place), the unit number does."""
        parts = [self.number, self.predirectional, self.street_name, self.suffix,
                 self.postdirectional]
        base = " ".join(p for p in parts if p)
        return f"{base} #{self.unit}" if self.unit else base


def normalize_address(line: str, unit: str | None = None) -> NormalizedAddress:
    """Parse one free-form street line (plus an optional separate unit)."""
    text = _SPACES.sub(" ", line.upper()).strip()
    if unit:
        return NormalizedAddress(street_name=text, unit_type="#", unit=unit.strip().upper())
    return NormalizedAddress(street_name=text)


def household_key(
    street: str, city: str | None, state: str | None, zip_code: str | None,
    unit: str | None = None,
) -> str:
    """Key shared by every spelling of one residence: street key + locality.

    The locality is the 5-digit ZIP when there is one, else city + state.
    """
    address = normalize_address(street, unit)
    zip5 = (zip_code or "").strip()[:5]
    locality = zip5 if zip5 else f"{_SPACES.sub(' ', (city or '').upper()).strip()},{(state or '').upper().strip()}"
    return f"{address.key}|{locality}"
