"""One request schema per job type: its fields, their choices, defaults and limits.

The API (multipart fields, the OpenAPI description, the JSON model's limits),
the web start pages (pickers, field lists) and the CLI (option help) all
read their choices from here, so a mode, a layout or a provider is named
once, and a value outside the choices is refused with the same code and
message wherever it comes from. The job type's ``validate`` stays the
authority on what a value *means* (a layout that matches the file, a chain
of providers that is configured); this module only says what may be sent.

It imports nothing heavy (the voter layouts are plain data): the CLI reads
it for its option help on every start.

Adding a field to a type is one :class:`RequestField` in its schema (or
``schema.with_fields(...)`` from elsewhere); the API's field list and its
OpenAPI body follow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from cocoa.domain.voter_files.layouts import LAYOUTS

FieldKind = Literal["text", "choice", "json", "number", "flag"]


@dataclass(frozen=True, slots=True)
class Choice:
    """One allowed value and what it does, for pickers and help text."""

    value: str
    description: str = ""


class RequestError(Exception):
    """A request value outside its field's choices: always a 422 with the
    field's code, whichever layer finds it."""

    status = 422

    def __init__(self, message: str, field: str, code: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
        self.details = details


@dataclass(frozen=True, slots=True)
class RequestField:
    """One field of a job request."""

    name: str
    description: str
    kind: FieldKind = "text"
    default: Any = None
    choices: tuple[Choice, ...] = ()
    max_length: int = 256  # for text: longer is refused by the API
    # Code of the 422 for a value outside ``choices``; ``invalid_<name>`` unless set.
    error_code: str = ""

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(choice.value for choice in self.choices)

    @property
    def code(self) -> str:
        return self.error_code or f"invalid_{self.name}"

    def choose(self, value: str | None) -> str:
        """``value`` (or the default when it is empty) if it is one of the choices."""
        chosen = value if value not in (None, "") else self.default
        if chosen not in self.values:
            raise RequestError(
                f"{self.name} must be one of {', '.join(self.values)} (got {chosen!r}).",
                self.name, self.code, {self.name: chosen, "valid": list(self.values)})
        return str(chosen)

    def openapi(self) -> dict[str, Any]:
        """The field's property in a multipart body's OpenAPI schema."""
        schema: dict[str, Any] = {"type": "string", "description": self.description}
        if self.kind == "choice":
            schema["enum"] = list(self.values)
        if self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True, slots=True)
class RequestSchema:
    """The fields one job type takes."""

    job_type: str
    fields: tuple[RequestField, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    def field(self, name: str) -> RequestField:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise KeyError(f"{self.job_type} has no request field {name!r}")

    def of_kind(self, *kinds: FieldKind) -> tuple[RequestField, ...]:
        return tuple(field for field in self.fields if field.kind in kinds)

    def with_fields(self, *extra: RequestField) -> RequestSchema:
        """This schema with more fields (replacing any of the same name)."""
        names = {field.name for field in extra}
        return replace(self, fields=(*(f for f in self.fields if f.name not in names), *extra))


def _first_sentence(text: str) -> str:
    return text.split(". ")[0]


# ----------------------------------------------------------------------------- import_voters

AUTO = Choice("auto", "Detect the layout from the header row")

VOTER_FORMAT = RequestField(
    "format", "A layout name from GET /voters/import/formats, or 'auto'.", "choice", "auto",
    (AUTO, *(Choice(name, _first_sentence(layout.description)) for name, layout in LAYOUTS.items())),
    max_length=64, error_code="unknown_format")
VOTER_MODE = RequestField(
    "mode", "'full' or 'incremental'.", "choice", "full",
    (Choice("full", "add new voters and update existing ones"),
     Choice("incremental", "only update voters already imported (new rows are skipped)")),
    max_length=64, error_code="invalid_mode")

VOTER_MAPPING = RequestField(
    "mapping", "Which of your columns holds each field, as a JSON object (our field -> your "
    'column), e.g. {"voter_id": "Voter ID", "street": "Street Address", "unit": "Apt"}; or the '
    "name of a mapping saved with POST /voters/mappings. Hand-made and vendor files only "
    "(format auto or simple_csv).", "text", max_length=10_000)

VOTER_MEMBER = RequestField(
    "member", "For a .zip holding several files: the name of the voter file inside it to import "
    "(a zip with one file needs none; .gz uploads hold one file).", "text", max_length=255)

IMPORT_VOTERS = RequestSchema("import_voters", (VOTER_FORMAT, VOTER_MODE, VOTER_MAPPING, VOTER_MEMBER))

# ----------------------------------------------------------------------------- parcel_import

# The common column-mapping keys (the API accepts the full set as JSON); the
# web form offers these as separate fields.
PARCEL_MAPPING_KEYS = (
    Choice("apn_field", "APN (parcel id) column"), Choice("address_field", "Situs address column"),
    Choice("city_field", "City column"), Choice("zip_field", "ZIP column"),
    Choice("state", "State of every parcel (e.g. NC)"),
)

PARCEL_IMPORT = RequestSchema("parcel_import", (
    RequestField("source", "Who published the parcels (keys APNs with it)."),
    RequestField("source_crs", "Overrides the file's CRS, e.g. 'EPSG:2264'."),
    # The formats are cocoa.domain.parcel_files.FORMATS (not imported: the CLI reads this module).
    RequestField("format", "The file's format (geojson, shapefile, gpkg, filegdb, csv); detected when left out."),
    RequestField("layer", "The layer to read from a GeoPackage or FileGDB with several."),
    RequestField("mapping", 'JSON object naming the columns, e.g. {"apn_field": "APN", '
                 '"address_field": "SITUS"}.', "json", choices=PARCEL_MAPPING_KEYS, max_length=10_000),
))

# ----------------------------------------------------------------------------- geocode_households

PROVIDER = RequestField(
    "provider", "local, census, nominatim, or a chain such as 'local,census'.", "choice",
    "local",
    (Choice("local", "offline, matches imported parcel addresses"),
     Choice("census", "US Census Geocoder"),
     Choice("nominatim", "OpenStreetMap (1 request/second)")),
    max_length=128, error_code="unknown_provider")

GEOCODE_FILTERS = (
    RequestField("city", "Households in this city.", max_length=128),
    RequestField("state", "Households in this state.", max_length=32),
    RequestField("zip_code", "Households with this ZIP code.", max_length=16),
    RequestField("county", "Households in this county.", max_length=128),
    RequestField("precinct", "Households in this precinct.", max_length=128),
)

GEOCODE_HOUSEHOLDS = RequestSchema("geocode_households", (
    *GEOCODE_FILTERS,
    RequestField("unmatched_in_job", "Only the households this geocoding job left without a match "
                 "(no_match, tie, error): to try them with another provider.", max_length=64),
    RequestField("only_missing", "Skip households that already have coordinates.", "flag", True),
    RequestField("limit", "At most this many households (1 .. the server's item limit per group; "
                 "above the limit per job they run as a group of jobs).", "number"),
    PROVIDER,
))

SCHEMAS = {schema.job_type: schema for schema in (IMPORT_VOTERS, PARCEL_IMPORT, GEOCODE_HOUSEHOLDS)}
