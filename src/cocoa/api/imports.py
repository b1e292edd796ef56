"""Endpoints that start jobs, and the machinery they share.

Every job-creating endpoint is admin-only and answers ``202 Accepted`` with
``{"job_id", "status": "pending", "job"}`` and ``Location: /api/v1/jobs/{id}``.

Why the upload endpoints read the multipart body themselves instead of
declaring ``UploadFile``/``Form`` parameters: FastAPI parses declared body
parameters *before* it runs dependencies, so an anonymous client could make
the server spool a huge file before being told 401, and a JSON body would come
back as "file missing" instead of 415. Reading the form in the handler gives
the order a client expects - 401, 403, 415, 413, 422 - and lets the size limit
cut the body off while it streams (``Content-Length`` is checked up front;
chunked bodies are counted as they arrive). The multipart schema is declared
with ``openapi_extra`` so the OpenAPI document stays complete.

The spooled file (Starlette keeps up to 1 MiB in memory, the rest in a
temporary file) is handed to :meth:`JobManager.create` as a stream, which
copies it into database chunks inside the job-creation transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from cocoa.api.accepted import accepted
from cocoa.api.bodies import read_form, upload_limits
from cocoa.api.deps import AdminUser, CurrentUser, Objects
from cocoa.api.errors import ApiError
from cocoa.api.schemas import ErrorBody, JobAccepted, VoterFormatList, errors, text
from cocoa.api.unpacking import create_plain, create_unpacked, finish_upload, storing, upload_sink
from cocoa.api.webhook_fields import DESCRIPTION as WEBHOOK_DESCRIPTION
from cocoa.api.webhook_fields import OPENAPI_PROPERTY as WEBHOOK_PROPERTY
from cocoa.api.webhook_fields import checked_webhook_url
from cocoa.auth import User
from cocoa.jobs.client import UploadSource
from cocoa.jobs.uploads import UploadSink
from cocoa.jobs.webhooks import MAX_URL
from cocoa.jobtypes.requests import (
    GEOCODE_HOUSEHOLDS,
    IMPORT_VOTERS,
    PARCEL_IMPORT,
    PROVIDER,
    RequestError,
    RequestField,
)

router = APIRouter(tags=["imports"])

MAX_FORM_FIELDS = 16
# More file parts than the one 'file' are parsed (the size limit still bounds
# them) so that a client who sends, say, 'format' as a file, or two files,
# hears exactly that instead of Starlette's "Too many files. Maximum number
# of files is 1."
MAX_FORM_FILES = 4
UPLOAD_ERRORS = errors(400, 401, 403, 413, 415, 422)


# ----------------------------------------------------------------------------- machinery


async def read_upload_form(request: Request, limit: int, file_sink: UploadSink | None = None) -> FormData:
    """The parsed multipart form, within the size limit (see :mod:`cocoa.api.bodies`)."""
    return await read_form(request, upload_limits(limit, MAX_FORM_FILES, MAX_FORM_FIELDS), file_sink)


def form_file(form: FormData, limit: int) -> UploadFile:
    if len(form.getlist("file")) > 1:
        message = "Send one file per import: the multipart field 'file' appears more than once."
        raise ApiError(422, message, "too_many_files",
                       [{"location": ["body", "file"], "message": message, "type": "too_many"}])
    value = form.get("file")
    if not isinstance(value, UploadFile):
        message = ("Missing file: send it as the multipart field 'file'." if value is None
                   else "The multipart field 'file' must be a file part (with a filename).")
        raise ApiError(400, message, "file_required",  # 400: no file, nothing to read
                       [{"location": ["body", "file"], "message": message, "type": "missing"}])
    if value.size is not None and value.size > limit:
        raise upload_limits(limit).too_large()
    return value


def form_text(form: FormData, name: str, default: str | None = None, max_length: int = 10_000) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ApiError(422, f"The multipart field {name!r} must be text, not a file.", "invalid_field",
                       [{"location": ["body", name], "message": "must be text", "type": "string_type"}])
    if "\x00" in value:
        raise ApiError(422, f"The multipart field {name!r} must not contain NUL characters.",
                       "invalid_field", [{"location": ["body", name], "message": "NUL character",
                                          "type": "string_pattern_mismatch"}])
    if len(value) > max_length:
        raise ApiError(422, f"The multipart field {name!r} is longer than {max_length} characters.",
                       "invalid_field", [{"location": ["body", name], "message": "too long",
                                          "type": "string_too_long"}])
    return value


def _printable(value: str | None) -> str | None:
    """Client-supplied names are only displayed; drop what a database cannot store."""
    return value.replace("\x00", "")[:255] if value else None


def check_field_names(form: FormData, known: tuple[str, ...]) -> None:
    """422 for a field this endpoint does not take: a typo such as 'fromat'
    must not silently fall back to the default."""
    unknown = sorted(set(form.keys()) - {"file", *known})
    if unknown:
        message = (f"Unknown multipart field(s) {', '.join(map(repr, unknown))}; this endpoint takes "
                   f"{', '.join(map(repr, ('file', *known)))}.")
        raise ApiError(422, message, "unknown_field",
                       [{"location": ["body", name], "message": "unknown field", "type": "extra_forbidden"}
                        for name in unknown])


async def create_upload_job(
    request: Request, response: Response, objects: Objects, user: User, type_name: str,
    build_request: Callable[[FormData], dict[str, Any]], fields: tuple[str, ...],
    unpack: bool = False,
) -> dict[str, Any]:
    """Read the form, validate its fields, then create the job in the threadpool
    (``unpack``: a .zip/.gz upload is read as the data file inside it)."""
    limit = objects.jobs.settings.max_upload_bytes
    sink = upload_sink(objects.jobs, user.username, unpack=unpack)
    async with storing(sink):
        form = await read_upload_form(request, limit, sink)
        try:
            upload = form_file(form, limit)
            check_field_names(form, (*fields, "webhook_url"))
            job_request = build_request(form)
            webhook_url = await run_in_threadpool(checked_webhook_url,
                                                  form_text(form, "webhook_url", None, MAX_URL),
                                                  objects.jobs.settings)
            source = await finish_upload(sink, UploadSource(upload.file, _printable(upload.filename),
                                                            _printable(upload.content_type)))
            job = await run_in_threadpool(create_unpacked if unpack else create_plain, objects.jobs,
                                          type_name, job_request, source, created_by=user.username,
                                          actor=user.actor, webhook_url=webhook_url)
        finally:
            await form.close()
    return await run_in_threadpool(accepted, objects, job, response)


def multipart_body(properties: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a multipart endpoint with a required ``file``."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "description": "The file."},
                       **properties},
    }}}}}


# ----------------------------------------------------------------------------- voters


VOTER_FIELDS = IMPORT_VOTERS.names


def _voter_request(form: FormData) -> dict[str, Any]:
    """The layout name is checked by the job type (its message lists the
    layouts); the mode here, with the code the job type would give it."""
    format_field = IMPORT_VOTERS.field("format")
    try:
        mode = IMPORT_VOTERS.field("mode").choose(form_text(form, "mode"))
    except RequestError as exc:
        raise request_error(exc) from None
    voter_request = {"format": form_text(form, "format", format_field.default, format_field.max_length),
                     "mode": mode}
    # JSON or a saved mapping's name: the job type reads and checks it (issue 17).
    mapping = form_text(form, "mapping", None, IMPORT_VOTERS.field("mapping").max_length)
    if mapping is not None:
        voter_request["mapping"] = mapping
    member = form_text(form, "member", None, IMPORT_VOTERS.field("member").max_length)
    if member is not None:  # which file of a zip (cocoa.api.unpacking)
        voter_request["member"] = member
    return voter_request


def request_error(exc: RequestError) -> ApiError:
    """A value outside a field's choices, in the API's error shape."""
    return ApiError(exc.status, exc.message, exc.code,
                    [{"location": ["body", exc.field], "message": f"invalid {exc.field}", "type": "enum"}])


def field_properties(fields: tuple[RequestField, ...]) -> dict[str, Any]:
    """The OpenAPI properties of a multipart body's text fields."""
    return {field.name: field.openapi() for field in fields}


@router.post(
    "/voters/import", status_code=202, response_model=JobAccepted, responses=UPLOAD_ERRORS,
    openapi_extra=multipart_body({**field_properties(IMPORT_VOTERS.fields), "webhook_url": WEBHOOK_PROPERTY}),
)
async def import_voters(request: Request, response: Response, user: AdminUser,
                        objects: Objects) -> dict[str, Any]:
    """Start an ``import_voters`` job for a voter file (CSV/TSV in a known layout)."""
    return await create_upload_job(request, response, objects, user, "import_voters", _voter_request,
                                   VOTER_FIELDS, unpack=True)


@router.get("/voters/import/formats", response_model=VoterFormatList, responses=errors(401, 503))
def voter_formats(_: CurrentUser) -> dict[str, Any]:
    """The voter file layouts the importer knows, with the columns each requires."""
    try:  # lazily: the domain module is large and optional for API-only tests
        from cocoa.domain.voter_files import LAYOUTS
    except ImportError as exc:
        raise ApiError(503, f"Voter file layouts are not available: {exc}", "unavailable") from exc
    return {"default": "auto", "formats": [
        {"name": layout.name, "description": layout.description,
         "required_columns": list(layout.required), "columns": list(layout.columns)}
        for layout in LAYOUTS.values()
    ]}


# ----------------------------------------------------------------------------- parcels


PARCEL_FIELDS = PARCEL_IMPORT.names


def _parcel_request(form: FormData) -> dict[str, Any]:
    job_request: dict[str, Any] = {}
    for field in PARCEL_IMPORT.of_kind("text"):
        value = form_text(form, field.name, None, field.max_length)
        if value is not None:
            job_request[field.name] = value
    for field in PARCEL_IMPORT.of_kind("json"):
        value = form_text(form, field.name, None, field.max_length)
        if value is not None:
            job_request[field.name] = _json_object(value, field.name)
    return job_request


MAPPING_EXAMPLE = '{"apn_field": "APN", "address_field": "SITUS"}'


def _json_object(text: str, name: str) -> dict[str, Any]:
    """A flat JSON object of column names (strings, or null for "none").

    Flat because nothing nested means anything in a mapping - and a deeply
    nested document made ``json.loads`` raise ``RecursionError``, a 500.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise _invalid_json(name, f"{name} must be a flat JSON object such as {MAPPING_EXAMPLE}; "
                            "this one is nested too deeply to read.", "json_too_deep") from None
    except ValueError as exc:
        raise _invalid_json(name, f"{name} must be a JSON object: {exc}", "json_invalid") from None
    if not isinstance(value, dict):
        raise _invalid_json(name, f"{name} must be a JSON object such as {MAPPING_EXAMPLE}.", "dict_type")
    nested = [key for key, item in value.items() if item is not None and not isinstance(item, str)]
    if nested:
        raise _invalid_json(name, f"{name} must be a flat JSON object of column names (strings) such as "
                            f"{MAPPING_EXAMPLE}; not a string: {', '.join(repr(key[:64]) for key in nested[:5])}.",
                            "string_type")
    return value


def _invalid_json(name: str, message: str, kind: str) -> ApiError:
    return ApiError(422, message, f"invalid_{name}",
                    [{"location": ["body", name], "message": message, "type": kind}])


@router.post(
    "/gis/parcels/import", status_code=202, response_model=JobAccepted, responses=UPLOAD_ERRORS,
    openapi_extra=multipart_body({**field_properties(PARCEL_IMPORT.fields), "webhook_url": WEBHOOK_PROPERTY}),
)
async def import_parcels(request: Request, response: Response, user: AdminUser,
                         objects: Objects) -> dict[str, Any]:
    """Start a ``parcel_import`` job (GeoJSON, zipped Shapefile, GeoPackage, ...)."""
    return await create_upload_job(request, response, objects, user, "parcel_import", _parcel_request,
                                   PARCEL_FIELDS)


# ----------------------------------------------------------------------------- geocoding


def _geocode_limit(name: str) -> int:
    return GEOCODE_HOUSEHOLDS.field(name).max_length


class GeocodeRequest(BaseModel):
    """Which households to geocode, and with what."""

    model_config = ConfigDict(extra="forbid")

    # Lengths, defaults and descriptions: cocoa.jobtypes.requests.GEOCODE_HOUSEHOLDS.
    city: Annotated[str, text(_geocode_limit("city"))] | None = None
    state: Annotated[str, text(_geocode_limit("state"))] | None = None
    zip_code: Annotated[str, text(_geocode_limit("zip_code"))] | None = None
    county: Annotated[str, text(_geocode_limit("county"))] | None = None
    precinct: Annotated[str, text(_geocode_limit("precinct"))] | None = None
    unmatched_in_job: Annotated[str, text(_geocode_limit("unmatched_in_job"))] | None = Field(
        None, description=GEOCODE_HOUSEHOLDS.field("unmatched_in_job").description)
    # Strict: a JSON API takes numbers and booleans as such. Lax parsing let
    # "limit": "5" and "limit": true through as 5 and 1 - a client bug hidden.
    only_missing: StrictBool = Field(True, description=GEOCODE_HOUSEHOLDS.field("only_missing").description)
    # No upper bound here: the real one is COCOA_MAX_ITEMS_PER_GROUP, which the
    # job type checks with a message naming it (a static 2**31-1 bound told
    # clients a maximum that is not the one in force).
    limit: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description=GEOCODE_HOUSEHOLDS.field("limit").description)
    provider: Annotated[str, text(PROVIDER.max_length)] = Field(PROVIDER.default, description=PROVIDER.description)
    webhook_url: Annotated[str, text(MAX_URL)] | None = Field(None, description=WEBHOOK_DESCRIPTION)


async def require_json_body(request: Request) -> None:
    """415 unless the body is declared JSON.

    Why: FastAPI parses only a body whose Content-Type is JSON; a form,
    ``text/plain`` or no content type reached the model as raw bytes and came
    back as the baffling 422 "Input should be a valid dictionary or object to
    extract fields from". A dependency runs after authentication (401/403
    first) and before the body is validated.
    """
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
        got = content_type or "no content type"
        raise ApiError(415, f"Send the request body as a JSON object with 'Content-Type: application/json' "
                       f"(got {got!r}).", "unsupported_media_type", {"expected": "application/json"})


JsonBody = Annotated[None, Depends(require_json_body)]


@router.post("/jobs/geocoding", status_code=202, response_model=JobAccepted,
             responses={**errors(400, 401, 403, 415, 422),
                        415: {"model": ErrorBody, "description": "The body is not JSON "
                              "(send Content-Type: application/json)."}}, tags=["jobs"])
def start_geocoding(body: GeocodeRequest, response: Response, user: AdminUser,
                    objects: Objects, _: JsonBody) -> dict[str, Any]:
    """Start a ``geocode_households`` job over the households matching the filters."""
    webhook_url = checked_webhook_url(body.webhook_url, objects.jobs.settings)
    job = objects.jobs.create("geocode_households", body.model_dump(exclude={"webhook_url"}),
                              created_by=user.username, actor=user.actor, webhook_url=webhook_url)
    return accepted(objects, job, response)

