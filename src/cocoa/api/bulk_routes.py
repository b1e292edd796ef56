"""``/api/v1/jobs/bulk/*``: cancel a selection, retry a filter's failed jobs (admin).

A thin layer over :mod:`cocoa.jobs.bulk`. Both take ``dry_run`` and then
change nothing but answer how many jobs the action would touch (``count``)
and which (``job_ids``), so a client can confirm first. The router is
included before the single-job routes: ``/jobs/bulk/cancel`` must not be
read as ``/jobs/{job_id}/cancel`` of a job called "bulk".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from cocoa.api.deps import AdminUser, Objects
from cocoa.api.errors import ApiError
from cocoa.api.imports import JsonBody
from cocoa.api.job_filters import build_filter
from cocoa.api.schemas import errors, text
from cocoa.jobs.bulk import MAX_BULK, bulk_cancel, bulk_retry, check_retry_statuses
from cocoa.jobs.search import filter_summary

router = APIRouter(prefix="/jobs/bulk", tags=["jobs"])

JobRef = Annotated[str, text(64, 1)]
Status = Annotated[str, text(64)]


class BulkCancelBody(BaseModel):
    """The jobs to cancel."""

    model_config = ConfigDict(extra="forbid")

    job_ids: list[JobRef] = Field(min_length=1, max_length=MAX_BULK,
                                  description=f"Job ids or unique id prefixes (6+ characters), 1..{MAX_BULK}.")
    dry_run: StrictBool = Field(False, description="Change nothing; answer how many would be cancelled.")


class BulkRetryBody(BaseModel):
    """Which failed jobs to retry: the listing's filters (GET /jobs)."""

    model_config = ConfigDict(extra="forbid")

    status: list[Status] | Status | None = Field(
        None, description="failed and/or cancelled (a list or a comma list); default: failed.")
    type: Annotated[str, text(64)] | None = Field(None, description="Only jobs of this type.")
    created_by: Annotated[str, text(255)] | None = Field(None, description="Only jobs this user created.")
    created_after: Annotated[str, text(64)] | None = Field(None, description="ISO 8601 date or date-time.")
    created_before: Annotated[str, text(64)] | None = Field(None, description="ISO 8601 date or date-time.")
    q: Annotated[str, text(255)] | None = Field(None, description="A job id, id prefix or file name part.")
    include_archived: StrictBool = False
    dry_run: StrictBool = Field(False, description="Change nothing; answer how many would be retried.")


class BulkItem(BaseModel):
    job_id: str
    new_job_id: str | None = Field(None, description="The retry's id (bulk retry only).")


class BulkSkipped(BaseModel):
    job_id: str
    reason: str = Field(description="Why this job was left alone (not found, already finished, ...).")


class BulkCancelResult(BaseModel):
    dry_run: bool
    count: int = Field(description="Jobs the action applies (or, dry, would apply) to.")
    job_ids: list[str]
    cancelled: list[BulkItem]
    skipped: list[BulkSkipped]


class BulkRetryResult(BaseModel):
    dry_run: bool
    count: int = Field(description=f"Failed jobs matching the filter without a retry yet (at most {MAX_BULK}).")
    job_ids: list[str]
    retried: list[BulkItem]
    skipped: list[BulkSkipped]
    filter: dict[str, Any] = Field(description="The filter as understood.")


@router.post("/cancel", response_model=BulkCancelResult, responses=errors(401, 403, 415, 422))
async def cancel_jobs(body: BulkCancelBody, user: AdminUser, objects: Objects, _: JsonBody) -> dict[str, Any]:
    """Cancel the selected jobs; ones that cannot be cancelled (finished, unknown) are listed in ``skipped``."""
    outcome = await run_in_threadpool(bulk_cancel, objects.jobs, body.job_ids, actor=user.username,
                                      dry_run=body.dry_run)
    return outcome.as_dict("cancelled")


@router.post("/retry", response_model=BulkRetryResult, responses=errors(401, 403, 415, 422))
async def retry_jobs(body: BulkRetryBody, user: AdminUser, objects: Objects, _: JsonBody) -> dict[str, Any]:
    """Retry every failed job matching the filter that has not been retried yet (each gets a new job)."""
    statuses = [body.status] if isinstance(body.status, str) else body.status
    spec = build_filter(statuses, body.type, body.created_by, body.created_after, body.created_before, body.q,
                        body.include_archived)
    try:
        check_retry_statuses(spec.statuses)
    except ValueError as exc:
        raise ApiError(422, str(exc), "invalid_status", [{"location": ["body", "status"],
                                                          "message": str(exc), "type": "enum"}]) from None
    outcome = await run_in_threadpool(bulk_retry, objects.jobs, spec, created_by=user.username,
                                      dry_run=body.dry_run)
    return {**outcome.as_dict("retried"), "filter": filter_summary(spec)}
