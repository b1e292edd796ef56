"""The three "start a job" forms: from submitted form fields to a job request.

Only the shape is checked here (which fields, which choices); the job type's
own ``validate`` is the authority on values, so the web form, the API and the
CLI all refuse the same things with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VOTER_FORMATS = ("auto", "nc_statewide", "oh_swvf", "contra_costa", "simple_csv")
VOTER_MODES = ("full", "incremental")
PROVIDERS = ("local", "census", "nominatim")
GEOCODE_FILTERS = ("city", "state", "zip_code", "county", "precinct")
# The common column-mapping keys of parcel_import (the API accepts the full set as JSON).
PARCEL_MAPPING = {"apn_field": "APN (parcel id) column", "address_field": "Situs address column",
                  "city_field": "City column", "zip_field": "ZIP column",
                  "state": "State of every parcel (e.g. NC)"}


class FormError(Exception):
    """A form value outside its choices; shown like a job validation error."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class StartSpec:
    """What a start page creates: the job type and whether it needs a file."""

    slug: str
    job_type: str
    title: str
    needs_file: bool


SPECS = {
    "voters": StartSpec("voters", "import_voters", "Import a voter file", True),
    "parcels": StartSpec("parcels", "parcel_import", "Import parcels", True),
    "geocode": StartSpec("geocode", "geocode_households", "Geocode households", False),
}


def voter_formats() -> list[tuple[str, str]]:
    """(name, description) for the format picker; descriptions come from the
    layouts module when it is present."""
    try:
        from cocoa.domain.voter_files import LAYOUTS
    except ImportError:
        LAYOUTS = {}  # noqa: N806 - same name as the import it stands in for
    described = [("auto", "Detect the layout from the header row")]
    for name in VOTER_FORMATS[1:]:
        layout = LAYOUTS.get(name)
        described.append((name, str(getattr(layout, "description", "")).split(". ")[0]))
    return described


def _text(form: Any, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _choice(form: Any, name: str, choices: tuple[str, ...], default: str) -> str:
    value = _text(form, name) or default
    if value not in choices:
        raise FormError(f"{name} must be one of: {', '.join(choices)}.", name)
    return value


def voters_request(form: Any) -> dict[str, Any]:
    return {"format": _choice(form, "format", VOTER_FORMATS, "auto"),
            "mode": _choice(form, "mode", VOTER_MODES, "full")}


def parcels_request(form: Any) -> dict[str, Any]:
    """Empty optional fields are left out so the job type applies its defaults
    (the file's CRS, a recognised column preset)."""
    request: dict[str, Any] = {}
    for name in ("source_crs", "source"):
        value = _text(form, name)
        if value:
            request[name] = value
    mapping = {name: _text(form, name) for name in PARCEL_MAPPING if _text(form, name)}
    if mapping:
        request["mapping"] = mapping
    return request


def geocode_request(form: Any) -> dict[str, Any]:
    request: dict[str, Any] = {name: _text(form, name) for name in GEOCODE_FILTERS if _text(form, name)}
    request["provider"] = _choice(form, "provider", PROVIDERS, "local")
    request["only_missing"] = form.get("only_missing") in ("1", "on", "true")
    limit = _text(form, "limit")
    if limit:
        # isascii: "²" passes isdigit() but not int(), which was a 500.
        if not (limit.isascii() and limit.isdigit()) or int(limit) < 1:
            raise FormError("limit must be a whole number of at least 1 (or empty for no limit).", "limit")
        request["limit"] = int(limit)
    return request


BUILDERS = {"voters": voters_request, "parcels": parcels_request, "geocode": geocode_request}
