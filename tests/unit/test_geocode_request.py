"""What a geocoding provider is asked for a flat: its building, with nothing dropped."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cocoa.domain.addresses import household_key, street_parts
from cocoa.jobtypes.geocode_households import build_request


def _household(line: str, unit: str | None = None) -> SimpleNamespace:
    """A households row as a voter import stores it."""
    key, street_line, unit_text = street_parts(line, unit)
    return SimpleNamespace(id=7, address_key=household_key(line, "Raleigh", "NC", "27601", unit),
                           street_line=street_line, unit=unit_text or None,
                           city="Raleigh", state="NC", zip_code="27601")


@pytest.mark.parametrize(("flat", "building"), [
    ("100 N Main St Apt 3", "100 N Main St"),
    ("100 Main St, Sunset Plaza, Apt 3", "100 Main St, Sunset Plaza"),  # text the parser cannot place
    ("Unit 204 318 N Oak St", "318 N Oak St"),
])
def test_a_flat_asks_for_its_building_and_keeps_unplaced_text(flat: str, building: str) -> None:
    request = build_request(_household(flat))
    assert request.building_key == household_key(building, "Raleigh", "NC", "27601")
    assert request.keys == (household_key(flat, "Raleigh", "NC", "27601"),)
    assert household_key(request.street, "Raleigh", "NC", "27601") == request.building_key


def test_a_door_without_a_unit_is_its_own_building() -> None:
    request = build_request(_household("100 N Main St"))
    assert request.building_key is None and request.street == "100 N MAIN ST"
