"""Pydantic models of every API response, so ``/openapi.json`` is complete.

Why a separate module: the routers stay short, and the OpenAPI document (which
Schemathesis checks every response against) is defined in one place. The
models mirror :func:`cocoa.api.job_objects.public_dict` and the dicts of
:mod:`cocoa.auth`; they do not compute anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from cocoa.auth import Role
from cocoa.jobs.model import Control, Status

NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text and JSONB cannot hold NUL characters; refuse them as 422
at the edge instead of failing inside the database."""


def text(max_length: int, min_length: int = 0) -> Any:
    return Field(min_length=min_length, max_length=max_length, pattern=NO_NUL)


class Progress(BaseModel):
    processed: int = Field(description="Items done so far (succeeded + failed).")
    total: int | None = Field(description="Items in all; null until the worker has planned the job.")
    percent: float = Field(ge=0, le=100, description="100 only once the job is completed.")
    succeeded: int
    failed: int
    rate_per_second: float | None = Field(description="Recent throughput while processing.")
    eta_seconds: float | None = Field(description="Estimated time left while processing.")
    phase: str | None = Field(None, description="What the job is doing now, e.g. 'linking'.")


class JobInput(BaseModel):
    """What the uploaded file was, to tell jobs apart (cocoa.jobs.inputs)."""

    filename: str | None = Field(description="The file's name as uploaded (display only).")
    bytes: int | None = Field(description="Its size as uploaded, in bytes.")
    compressed: Literal["zip", "gzip"] | None = Field(
        description="'zip' or 'gzip' for a compressed upload, else null.")
    layout: str | None = Field(
        description="The detected (or requested) layout or format, e.g. 'ncsbe_statewide', 'geojson'.")


class ItemErrorOut(BaseModel):
    item: str = Field(description="What a person looks for: 'row 17', 'feature 3'.")
    item_index: int | None = Field(
        description="The number in `item` (17 for 'row 17'), for sorting; null when it has none.")
    severity: str = Field(description="'error', or 'warning' when the item was still used.")
    code: str
    message: str


class ChildJob(BaseModel):
    """One job of a group, as the group's object lists it."""

    id: str
    status: Status
    progress: Progress
    item_range: list[int] | None
    error: str | None
    error_count: int
    input: JobInput | None = None


class JobOut(BaseModel):
    """The public job object (built by :func:`cocoa.api.job_objects.public_dict`)."""

    id: str
    type: str
    status: Status
    requested_action: Control | None = Field(
        None, description="A cancel or pause waiting for the current batch to finish.")
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    archived_at: datetime | None = Field(
        None, description="When retention archived the job (hidden from listings unless include_archived).")
    elapsed_seconds: float | None = Field(
        None, description="Wall-clock seconds from the first start to the end (or now), paused and "
        "queued time included; null until the job starts.")
    processing_seconds: float = Field(
        0.0, description="Seconds a worker spent processing, without the time paused or pending "
        "between runs; the job's time limit counts this.")
    duration_seconds: float | None = Field(
        None, deprecated=True, description="Deprecated alias of elapsed_seconds; will be removed in v2.")
    created_by: str | None
    input: JobInput | None = Field(
        None, description="The uploaded file the job works on; null for a job without one.")
    params: dict[str, Any]
    result: dict[str, Any]
    error: str | None
    error_count: int = Field(description="Item errors recorded, warnings included (see "
                             "`GET /jobs/{id}/errors`); `progress.failed` counts only items not used.")
    recent_errors: list[ItemErrorOut]
    attempt: int
    retry_of: str | None
    kind: str = Field("job", description="'job', or 'group' for an upload over the per-job item "
                      "limit run as several child jobs (its progress, counters and item errors "
                      "are its children's; cancel/pause/resume/retry act on all of them).")
    parent_id: str | None = Field(None, description="The group this job is a part of.")
    item_range: list[int] | None = Field(
        None, description="A group's child: the first and last item (data row) it imports, 1-based.")
    children: list[ChildJob] = Field(default_factory=list, description="A group's jobs, in item order.")


class JobList(BaseModel):
    jobs: list[JobOut]
    total: int = Field(description="All jobs matching the filters, not just this page.")
    limit: int
    offset: int


class ErrorList(BaseModel):
    errors: list[ItemErrorOut]
    total: int
    limit: int
    offset: int


class JobAccepted(BaseModel):
    """The 202 body of every job-creating endpoint (:mod:`cocoa.api.accepted`)."""

    job_id: str = Field(description="The new job's id; the Location header points at it.")
    status: Literal["pending"] = Field(
        description="The state the job was created in; `job` may already show it running.")
    job: JobOut


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable, e.g. 'job_not_found'.")
    message: str = Field(description="What went wrong and how to fix it.")
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


MAX_TOKEN_DAYS = 3650


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, text(128, 1)] = Field(description="The user's name (any case).")
    password: Annotated[str, text(1024, 1)] = Field(description="The user's password.")
    name: Annotated[str, text(128, 1)] = Field("api", description="A label to recognise the token by.")
    expires_in_days: int | None = Field(
        None, ge=1, le=MAX_TOKEN_DAYS, description="The token stops working this many days from now. "
        "Omit this and expires_at for a token that works until it is revoked.")
    expires_at: AwareDatetime | None = Field(
        None, description="When the token stops working: ISO 8601 with a time zone, in the future, "
        "at most 10 years ahead.")

    @model_validator(mode="after")
    def _one_expiry(self) -> Self:
        if self.expires_in_days is not None and self.expires_at is not None:
            raise ValueError("give expires_in_days or expires_at, not both")
        if self.expires_at is not None:
            now = datetime.now(self.expires_at.tzinfo)
            if self.expires_at <= now:
                raise ValueError("expires_at must be in the future")
            if self.expires_at > now + timedelta(days=MAX_TOKEN_DAYS):
                raise ValueError(f"expires_at must be at most {MAX_TOKEN_DAYS} days from now")
        return self

    def expiry(self, now: datetime) -> datetime | None:
        if self.expires_in_days is not None:
            return now + timedelta(days=self.expires_in_days)
        return self.expires_at


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The first characters of the token, to recognise it.")
    username: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None = Field(description="Recorded at most once a minute.")
    revoked_at: datetime | None
    expires_at: datetime | None = Field(None, description="Null: works until revoked.")


class TokenCreated(TokenOut):
    token: str = Field(description="The secret. Shown only in this response; store it now.")


class TokenList(BaseModel):
    tokens: list[TokenOut]


class Me(BaseModel):
    id: int
    username: str
    role: Role


class VoterFormat(BaseModel):
    name: str
    description: str
    required_columns: list[str]
    columns: list[str] = Field(description="The documented header of the layout.")


class VoterFormatList(BaseModel):
    formats: list[VoterFormat]
    default: str = Field("auto", description="'auto' detects the layout from the header row.")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all in the one error shape."""
    return {s: {"model": ErrorBody, "description": ERROR_TEXT.get(s, "Error.")} for s in statuses}


def json_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Like :func:`errors`, for routes whose success is not JSON (the event
    stream): FastAPI would otherwise document the errors with the route's
    media type too."""
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    return {s: {"description": ERROR_TEXT.get(s, "Error."), "content": {"application/json": {"schema": ref}}}
            for s in statuses}


ERROR_TEXT = {
    400: "The request cannot be read: a malformed JSON or multipart body, or (uploads) no file part.",
    401: "Missing, invalid or revoked token.",
    403: "The caller's role does not allow this.",
    404: "No such job or token.",
    409: "The job's state does not allow this.",
    413: "The upload is larger than the limit.",
    415: "The body is not multipart/form-data.",
    422: "The request was read but a value is invalid: an unknown field, a value outside its choices, "
         "a file without the columns the job needs, nothing to do.",
    429: "Too many failed logins; retry after the Retry-After header's seconds.",
    503: "Not ready: database unreachable or schema not current.",
}
