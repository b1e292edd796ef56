"""The three "start a job" forms: from submitted form fields to a job request.

Only the shape is checked here (which fields, which choices); the job type's
own ``validate`` is the authority on values, so the web form, the API and the
CLI all refuse the same things with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cocoa.jobtypes.requests import GEOCODE_FILTERS as GEOCODE_FILTER_FIELDS
from cocoa.jobtypes.requests import (
    IMPORT_VOTERS,
    PARCEL_MAPPING_KEYS,
    PROVIDER,
    RequestError,
    RequestField,
)

# The choices each page offers, from the job types' request schemas.
VOTER_FORMAT = IMPORT_VOTERS.field("format")
VOTER_MODE = IMPORT_VOTERS.field("mode")
VOTER_MODES = VOTER_MODE.values
PROVIDERS = PROVIDER.values
GEOCODE_FILTERS = tuple(field.name for field in GEOCODE_FILTER_FIELDS)
# The common column-mapping keys of parcel_import (the API accepts the full set as JSON).
PARCEL_MAPPING = {choice.value: choice.description for choice in PARCEL_MAPPING_KEYS}


class FormError(RequestError):
    """A form value the page refuses; shown like a job validation error.

    ``code`` is the request schema's for a value outside its choices (the
    code the API gives the same mistake), else ``invalid_form``.
    """

    def __init__(self, message: str, field: str, code: str = "invalid_form") -> None:
        super().__init__(message, field, code, {})


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
    """(name, description) for the format picker: 'auto', then every layout."""
    return [(choice.value, choice.description) for choice in VOTER_FORMAT.choices]


def voter_modes() -> list[tuple[str, str]]:
    """(name, what it does) for the mode buttons."""
    return [(choice.value, choice.description) for choice in VOTER_MODE.choices]


def provider_choices() -> list[tuple[str, str]]:
    """(name, what it is) for the provider picker's help."""
    return [(choice.value, choice.description) for choice in PROVIDER.choices]


def _text(form: Any, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _choice(form: Any, field: RequestField) -> str:
    try:
        return field.choose(_text(form, field.name))
    except RequestError as exc:
        raise FormError(exc.message, exc.field, exc.code) from None


def voters_request(form: Any) -> dict[str, Any]:
    request = {"format": _choice(form, VOTER_FORMAT), "mode": _choice(form, VOTER_MODE)}
    # JSON or a saved mapping's name; the job type checks it (issue 17).
    mapping = _text(form, "mapping", IMPORT_VOTERS.field("mapping").max_length)
    if mapping:
        request["mapping"] = mapping
    return request


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
    request["provider"] = _choice(form, PROVIDER)
    request["only_missing"] = form.get("only_missing") in ("1", "on", "true")
    limit = _text(form, "limit")
    if limit:
        # isascii: "²" passes isdigit() but not int(), which was a 500.
        if not (limit.isascii() and limit.isdigit()) or int(limit) < 1:
            raise FormError("limit must be a whole number of at least 1 (or empty for no limit).", "limit")
        request["limit"] = int(limit)
    return request


BUILDERS = {"voters": voters_request, "parcels": parcels_request, "geocode": geocode_request}
