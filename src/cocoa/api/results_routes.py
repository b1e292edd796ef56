"""``/api/v1/jobs/{job_id}/results``: what a job left to act on, as pages or CSV.

A geocoding job lists the households it could not place (no match, tie,
error) with the reason; a parcel import lists the households without a
parcel and its parcels without a household. To geocode a geocoding job's
leftovers with another provider, start a job with
``POST /api/v1/jobs/geocoding {"unmatched_in_job": "<id>", "provider": ...}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from cocoa.api.browse_schemas import JobResults
from cocoa.api.deps import CurrentUser, Manager
from cocoa.api.errors import ApiError
from cocoa.api.jobs_routes import JobId, JSONBody, Offset
from cocoa.api.schemas import NO_NUL, errors, json_errors
from cocoa.browse.filters import UnknownJob
from cocoa.browse.results import NoResults, csv_text, result_page
from cocoa.db.engine import reading

router = APIRouter(prefix="/jobs", tags=["jobs"])

MAX_PAGE = 500
Kind = Annotated[str | None, Query(max_length=64, pattern=NO_NUL, description=(
    "Which list: geocoding `unmatched` (default), `no_match`, `tie`, `error`; parcel import "
    "`unlinked_households` (default), `parcels_without_households`."))]


def _results(manager: Manager, job_id: str, kind: str | None, limit: int | None, offset: int) -> dict[str, Any]:
    with reading(manager.engine) as conn:
        try:
            return result_page(conn, job_id, kind, limit, offset)
        except UnknownJob:
            raise ApiError(404, f"No job with id {job_id!r}.", "job_not_found") from None
        except NoResults as exc:
            raise ApiError(422, str(exc), "no_such_results", {"kind": kind}) from None


@router.get("/{job_id}/results", response_model=JobResults, responses=errors(401, 404, 422))
def job_results(
    _: CurrentUser, job_id: JobId, manager: Manager, kind: Kind = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"1..{MAX_PAGE}")] = 50, offset: Offset = 0,
) -> JSONBody:
    """One of the job's result lists, paged."""
    page = _results(manager, job_id, kind, limit, offset)
    return JSONBody({**page, "limit": limit, "offset": offset})


@router.get("/{job_id}/results.csv", response_class=Response, responses={
    200: {"description": "The whole list as CSV (a header row first).", "content": {"text/csv": {}}},
    **json_errors(401, 404, 422)})
def job_results_csv(_: CurrentUser, job_id: JobId, manager: Manager, kind: Kind = None) -> Response:
    """The whole list as CSV, for a spreadsheet or another tool."""
    page = _results(manager, job_id, kind, None, 0)
    name = f"{page['job_type']}-{job_id[:8]}-{page['kind']}.csv"
    return Response(csv_text(page["fields"], page["items"]), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
