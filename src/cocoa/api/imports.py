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

from cocoa.api.bodies import read_form, upload_limits
from cocoa.api.deps import AdminUser, CurrentUser, Objects
from cocoa.api.errors import ApiError
from cocoa.api.job_objects import JobObjects
from cocoa.api.jobs_routes import job_location
from cocoa.api.schemas import ErrorBody, JobAccepted, VoterFormatList, errors, text
from cocoa.auth import User
from cocoa.jobs.client import UploadSource
from cocoa.jobs.model import Job

router = APIRouter(tags=["imports"])

MAX_FORM_FIELDS = 16
# More file parts than the one 'file' are parsed (the size limit still bounds
# them) so that a client who sends, say, 'format' as a file, or two files,
# hears exactly that instead of Starlette's "Too many files. Maximum number
# of files is 1."
MAX_FORM_FILES = 4
VOTER_MODES = ("full", "incremental")
UPLOAD_ERRORS = errors(400, 401, 403, 413, 415, 422)


# ----------------------------------------------------------------------------- machinery


async def read_upload_form(request: Request, limit: int) -> FormData:
    """The parsed multipart form, within the size limit (see :mod:`cocoa.api.bodies`)."""
    return await read_form(request, upload_limits(limit, MAX_FORM_FILES, MAX_FORM_FIELDS))


def form_file(form: FormData, limit: int) -> UploadFile:
    if len(form.getlist("file")) > 1:
        message = "Send one file per import: the multipart field 'file' appears more than once."
        raise ApiError(422, message, "too_many_files",
                       [{"location": ["body", "file"], "message": message, "type": "too_many"}])
    value = form.get("file")
    if not isinstance(value, UploadFile):
        message = ("Missing file: send it as the multipart field 'file'." if value is None
                   else "The multipart field 'file' must be a file part (with a filename).")
        raise ApiError(422, message, "file_required",
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


def accepted(objects: JobObjects, job: Job, response: Response) -> dict[str, Any]:
    """202 body. ``status`` is the state the job was created in (always
    pending); ``job`` is a snapshot read just after, which an idle worker may
    already have started."""
    response.headers["Location"] = job_location(job.id)
    return {"job_id": job.id, "status": "pending", "job": objects.job_dict(job)}


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
) -> dict[str, Any]:
    """Read the form, validate its fields, then create the job in the threadpool."""
    limit = objects.jobs.settings.max_upload_bytes
    form = await read_upload_form(request, limit)
    try:
        upload = form_file(form, limit)
        check_field_names(form, fields)
        job_request = build_request(form)
        source = UploadSource(upload.file, _printable(upload.filename), _printable(upload.content_type))
        job = await run_in_threadpool(objects.jobs.create, type_name, job_request,
                                      created_by=user.username, upload=source)
        return await run_in_threadpool(accepted, objects, job, response)
    finally:
        await form.close()


def multipart_body(properties: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a multipart endpoint with a required ``file``."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "description": "The file."},
                       **properties},
    }}}}}


# ----------------------------------------------------------------------------- voters


VOTER_FIELDS = ("format", "mode")


def _voter_request(form: FormData) -> dict[str, Any]:
    mode = form_text(form, "mode", "full")
    if mode not in VOTER_MODES:
        raise ApiError(422, f"mode must be one of {', '.join(VOTER_MODES)} (got {mode!r}).", "invalid_mode",
                       [{"location": ["body", "mode"], "message": "invalid mode", "type": "enum"}])
    return {"format": form_text(form, "format", "auto", 64), "mode": mode}


@router.post(
    "/voters/import", status_code=202, response_model=JobAccepted, responses=UPLOAD_ERRORS,
    openapi_extra=multipart_body({
        "format": {"type": "string", "default": "auto",
                   "description": "A layout name from GET /voters/import/formats, or 'auto'."},
        "mode": {"type": "string", "enum": list(VOTER_MODES), "default": "full",
                 "description": "'full' or 'incremental'."},
    }),
)
async def import_voters(request: Request, response: Response, user: AdminUser,
                        objects: Objects) -> dict[str, Any]:
    """Start an ``import_voters`` job for a voter file (CSV/TSV in a known layout)."""
    return await create_upload_job(request, response, objects, user, "import_voters", _voter_request,
                                   VOTER_FIELDS)


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


PARCEL_TEXT_FIELDS = ("source", "source_crs", "format", "layer")
PARCEL_FIELDS = (*PARCEL_TEXT_FIELDS, "mapping")


def _parcel_request(form: FormData) -> dict[str, Any]:
    job_request: dict[str, Any] = {}
    for name in PARCEL_TEXT_FIELDS:
        value = form_text(form, name, None, 256)
        if value is not None:
            job_request[name] = value
    mapping = form_text(form, "mapping")
    if mapping is not None:
        job_request["mapping"] = _json_object(mapping, "mapping")
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
    openapi_extra=multipart_body({
        "source": {"type": "string", "description": "Who published the parcels (keys APNs with it)."},
        "source_crs": {"type": "string", "description": "Overrides the file's CRS, e.g. 'EPSG:2264'."},
        "mapping": {"type": "string", "description": "JSON object naming the columns, e.g. "
                    '{"apn_field": "APN", "address_field": "SITUS"}.'},
    }),
)
async def import_parcels(request: Request, response: Response, user: AdminUser,
                         objects: Objects) -> dict[str, Any]:
    """Start a ``parcel_import`` job (GeoJSON, zipped Shapefile, GeoPackage, ...)."""
    return await create_upload_job(request, response, objects, user, "parcel_import", _parcel_request,
                                   PARCEL_FIELDS)


# ----------------------------------------------------------------------------- geocoding


class GeocodeRequest(BaseModel):
    """Which households to geocode, and with what."""

    model_config = ConfigDict(extra="forbid")

    city: Annotated[str, text(128)] | None = None
    state: Annotated[str, text(32)] | None = None
    zip_code: Annotated[str, text(16)] | None = None
    county: Annotated[str, text(128)] | None = None
    precinct: Annotated[str, text(128)] | None = None
    unmatched_in_job: Annotated[str, text(64)] | None = Field(
        None, description="Only the households this geocoding job left without a match (no_match, "
        "tie, error): to try them with another provider.")
    # Strict: a JSON API takes numbers and booleans as such. Lax parsing let
    # "limit": "5" and "limit": true through as 5 and 1 - a client bug hidden.
    only_missing: StrictBool = Field(True, description="Skip households that already have coordinates.")
    # No upper bound here: the real one is COCOA_MAX_ITEMS_PER_JOB, which the
    # job type checks with a message naming it (a static 2**31-1 bound told
    # clients a maximum that is not the one in force).
    limit: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="At most this many households (1 .. the server's item limit per job).")
    provider: Annotated[str, text(128)] = Field(
        "local", description="local, census, nominatim, or a chain such as 'local,census'.")


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
    job = objects.jobs.create("geocode_households", body.model_dump(), created_by=user.username)
    return accepted(objects, job, response)

