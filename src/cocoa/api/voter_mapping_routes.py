"""Voter import preview and saved column mappings (issue 17).

``POST /voters/import/preview`` takes the import's multipart form and
answers at once with what the import would do - creating no job and storing
nothing - so a user sees the layout, the columns used and the first rows
before committing to an import. ``/voters/mappings`` saves a column mapping
by name for ``mapping=<name>``.

Registered before the households router: ``GET /voters/mappings`` must not
be taken for ``GET /voters/{voter_id}``.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from cocoa.api.deps import AdminUser, CurrentUser, get_engine
from cocoa.api.errors import ApiError
from cocoa.api.imports import (
    UPLOAD_ERRORS,
    VOTER_FIELDS,
    JsonBody,
    check_field_names,
    field_properties,
    form_file,
    form_text,
    multipart_body,
    read_upload_form,
)
from cocoa.api.schemas import errors
from cocoa.config import Settings
from cocoa.domain.errors import InputError
from cocoa.domain.voter_files.mapping import MAPPABLE_FIELDS
from cocoa.domain.voter_files.preview import preview_file
from cocoa.jobtypes.import_voters.saved_mappings import (
    delete_mapping,
    list_mappings,
    resolve_mapping,
    save_mapping,
)
from cocoa.jobtypes.input_errors import STATUS
from cocoa.jobtypes.requests import IMPORT_VOTERS

router = APIRouter(tags=["imports"])
Engine = Annotated[sa.Engine, Depends(get_engine)]


class PreviewProblem(BaseModel):
    row: int
    code: str
    message: str
    severity: str


class VoterPreview(BaseModel):
    """What an import of the file would do (nothing is stored)."""

    layout: str = Field(description="The layout the import would use.")
    requested_format: str
    reason: str = Field(description="Why that layout, and how voters are identified.")
    delimiter: str
    columns: list[str] = Field(description="The file's header as read.")
    mapping: dict[str, str] = Field(description="Our field -> the column it would be read from.")
    identity: str = Field(description="What identifies a voter: an id column, or name + address "
                          "(+ date of birth).")
    rows: int = Field(description="Data rows (an estimate when rows_exact is false).")
    rows_exact: bool
    rows_note: str
    checked_rows: int = Field(description="How many of the first rows were checked for problems.")
    sample: list[dict[str, Any]] = Field(description="The first 20 rows as they would be stored: "
                                         "name, address, household key (or why not stored).")
    problems: list[PreviewProblem]


class SavedMappingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="1-64 letters, digits, spaces, '_', '.' or '-'.", max_length=64)
    mapping: dict[str, str | None] = Field(
        description=f"Our field -> your column (null: no column). Fields: {', '.join(MAPPABLE_FIELDS)}.")


class SavedMapping(BaseModel):
    name: str
    mapping: dict[str, str | None]
    created_by: str | None = None
    updated_at: str | None = None


class SavedMappingList(BaseModel):
    mappings: list[SavedMapping]
    fields: list[str] = Field(description="The fields a mapping may name.")


def _api_error(exc: InputError) -> ApiError:
    return ApiError(STATUS[exc.problem], exc.message, exc.code, exc.details)


@router.post(
    "/voters/import/preview", response_model=VoterPreview, responses=UPLOAD_ERRORS,
    openapi_extra=multipart_body(field_properties(IMPORT_VOTERS.fields)),
)
async def preview_voter_import(request: Request, _: AdminUser, engine: Engine) -> dict[str, Any]:
    """What importing this file would do: layout and why, the columns used, the row
    count, the first 20 rows as stored and the problems in the first rows. Takes the
    import's form; creates no job and stores nothing."""
    settings: Settings = request.app.state.settings
    form = await read_upload_form(request, settings.max_upload_bytes)
    try:
        upload = form_file(form, settings.max_upload_bytes)
        check_field_names(form, VOTER_FIELDS)
        requested = form_text(form, "format", "auto", 64) or "auto"
        mapping = form_text(form, "mapping", None, IMPORT_VOTERS.field("mapping").max_length)
        member = form_text(form, "member", None, 1024) if "member" in VOTER_FIELDS else None
        return await run_in_threadpool(_preview, engine, settings, upload.file, requested,
                                       mapping, member)
    finally:
        await form.close()


def _preview(engine: sa.Engine, settings: Settings, stream: Any, requested: str,
             mapping_text: str | None, member: str | None) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            mapping, _ = resolve_mapping(conn, mapping_text)
        data = unpacked_upload(stream, member, settings)
        return preview_file(data, requested, mapping)
    except InputError as exc:
        raise _api_error(exc) from None


def unpacked_upload(stream: Any, member: str | None, settings: Settings) -> Any:
    """The data file of a zipped or gzipped upload, when the server reads
    those (issue 17, item 1); the upload itself otherwise."""
    try:
        from cocoa.domain.compressed import unpack
    except ImportError:  # pragma: no cover - compressed uploads not installed
        return stream
    limit = getattr(settings, "max_decompressed_bytes", None)
    if limit is None:
        return stream
    return unpack(stream, member=member, max_bytes=limit).stream


@router.get("/voters/mappings", response_model=SavedMappingList, responses=errors(401))
def saved_mapping_list(_: CurrentUser, engine: Engine) -> dict[str, Any]:
    """The saved column mappings, by name (use one with ``mapping=<name>``)."""
    return {"mappings": list_mappings(engine), "fields": list(MAPPABLE_FIELDS)}


@router.post("/voters/mappings", status_code=201, response_model=SavedMapping,
             responses=errors(401, 403, 415, 422))
def save_voter_mapping(body: SavedMappingBody, user: AdminUser, engine: Engine,
                       _: JsonBody) -> dict[str, Any]:
    """Save (or replace) a column mapping by name."""
    try:
        return save_mapping(engine, body.name, body.mapping, user.username)
    except InputError as exc:
        raise _api_error(exc) from None


@router.delete("/voters/mappings/{name}", status_code=204, response_class=Response,
               responses=errors(401, 403, 404))
def delete_voter_mapping(name: str, _: AdminUser, engine: Engine) -> Response:
    """Delete a saved column mapping. Jobs already created with it are unaffected
    (each stored the mapping itself)."""
    try:
        delete_mapping(engine, name)
    except InputError as exc:  # no such name: here a 404, not the 422 of a request that uses it
        raise ApiError(404, exc.message, exc.code, exc.details) from None
    return Response(status_code=204)
