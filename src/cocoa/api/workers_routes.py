"""``/api/v1/workers`` and ``/api/v1/jobs/{id}/history``: who serves the
queue, and who did what to a job (issue 19). Both are viewer-readable."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cocoa.api.deps import CurrentUser, Manager
from cocoa.api.jobs_routes import JobId, JSONBody
from cocoa.api.schemas import errors
from cocoa.jobs import workers as worker_registry

router = APIRouter()


class RunningJob(BaseModel):
    id: str
    type: str


class WorkerOut(BaseModel):
    id: str = Field(description="host:pid:random, also the jobs' lease owner.")
    host: str
    pid: int
    version: str
    types: list[str] | None = Field(description="The job types it serves; null: every type.")
    started_at: str
    last_heartbeat: str
    live: bool = Field(description="Heartbeat younger than the lease; dead workers are pruned soon after.")
    current_jobs: list[RunningJob] = Field(description="The jobs it holds a lease on now.")


class WorkerList(BaseModel):
    workers: list[WorkerOut]
    live: int


class HistoryEvent(BaseModel):
    at: str
    event: str = Field(description="created, claimed, pause_requested, paused, resumed, cancel_requested, "
                                   "cancelled, released, lease_lost, rescued, retried_as, completed, failed")
    actor: str | None = Field(description="A user, 'user (token name)', a worker id, or 'system'.")
    detail: str | None


class JobHistory(BaseModel):
    job_id: str
    events: list[HistoryEvent]


@router.get("/workers", response_model=WorkerList, responses=errors(401), tags=["workers"])
def list_workers(_: CurrentUser, manager: Manager) -> JSONBody:
    """Registered workers, live ones first, with the jobs they run now."""
    found = worker_registry.list_workers(manager.engine, manager.settings.lease_seconds)
    return JSONBody({"workers": [w.as_dict() for w in found], "live": sum(w.live for w in found)})


@router.get("/jobs/{job_id}/history", response_model=JobHistory, responses=errors(401, 404, 409),
            tags=["jobs"])
def job_history(_: CurrentUser, job_id: JobId, manager: Manager) -> JSONBody:
    """Every state change and control action of the job, oldest first, with its actor."""
    return JSONBody({"job_id": job_id, "events": [e.as_dict() for e in manager.history(job_id)]})
