"""The one answer of every endpoint that creates a job: ``202 Accepted``.

Imports, geocoding and retry all answer ``{"job_id", "status": "pending",
"job"}`` with ``Location: /api/v1/jobs/{id}``, so a client handles a new job
the same way whichever endpoint made it (issue 21: retry used to answer the
bare job object). Kept here, apart from the routers, so there is one place
to change it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from cocoa.api.job_objects import JobObjects
from cocoa.api.schemas import JobAccepted
from cocoa.jobs.model import Job

__all__ = ["JobAccepted", "accepted", "job_location"]


def job_location(job_id: str) -> str:
    """Where a job's object is read (the 202's ``Location``)."""
    return f"/api/v1/jobs/{job_id}"


def accepted(objects: JobObjects, job: Job, response: Response) -> dict[str, Any]:
    """202 body and ``Location`` for a job just created. ``status`` is the
    state the job was created in (always pending); ``job`` is a snapshot read
    just after, which an idle worker may already have started."""
    response.headers["Location"] = job_location(job.id)
    return {"job_id": job.id, "status": "pending", "job": objects.job_dict(job)}
