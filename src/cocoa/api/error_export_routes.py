"""``GET /api/v1/jobs/{job_id}/errors.csv``: a job's item errors to fix and re-import.

Each rejected row comes with its original line (the text of the input
line as it was in the file, decoded), so the user can correct those lines,
put them under the file's header line and import just them with
``mode=incremental``. Warnings are listed too (their rows were imported, so
they carry no line); ``severity=error`` leaves them out.

The CSV is streamed in pages (:mod:`cocoa.jobs.error_export`): a job can
have a hundred thousand errors. Cells that a spreadsheet would run as a
formula (starting with ``= + - @``, tab or CR; the lines come from files
anyone may have written) get a leading apostrophe - remove it when copying
such a line back into a voter file.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from cocoa.api.deps import CurrentUser, Manager
from cocoa.api.jobs_routes import JobId
from cocoa.api.schemas import json_errors
from cocoa.jobs.error_export import COLUMNS, csv_chunks, iter_item_errors

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}/errors.csv", response_class=StreamingResponse, responses={
    200: {"description": f"CSV with a header row: {', '.join(COLUMNS)}. `original_line` is the rejected "
          "row's line as in the file (empty for warnings).", "content": {"text/csv": {}}},
    **json_errors(401, 404, 422)})
async def job_errors_csv(
    _: CurrentUser, job_id: JobId, manager: Manager,
    severity: Annotated[Literal["error", "warning"] | None, Query(
        description="Only errors (the rejected rows) or only warnings; both if left out.")] = None,
) -> StreamingResponse:
    """Every item error of the job as CSV, with the original line of each rejected row."""
    await run_in_threadpool(manager.get, job_id)  # 404 before the download starts
    name = f"job-{job_id[:8]}-errors.csv"
    # A sync iterator: Starlette reads it in its threadpool, one page of errors at a time.
    body = csv_chunks(iter_item_errors(manager.engine, job_id, severity=severity))
    # nosniff: the lines come from files anyone may have written; a browser must never
    # take them for a page.
    return StreamingResponse(body, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
