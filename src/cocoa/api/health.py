"""Liveness, readiness and Prometheus metrics.

* ``/healthz``: the process answers (no database): for restart decisions.
* ``/readyz``: the database takes a write (a one-row update in a transaction
  that is rolled back, within the request lock wait), its schema is the one
  this code expects, and the SQLite database's volume has at least
  ``COCOA_MIN_FREE_DISK_MB`` free: for load-balancer decisions. 503 in the
  error shape otherwise. PostgreSQL's disk is on its server, out of sight
  here: the answer says so, and the server's own monitoring must watch it.
* ``/metrics``: Prometheus text format, computed by querying the database at
  scrape time (a custom collector), so every API host reports the same
  cluster-wide numbers and nothing is lost when a process restarts.

Decision: ``/metrics`` requires a valid API token of any role. Job counts,
types and timings reveal what a campaign is doing; Prometheus sends a bearer
token with ``authorization: {credentials: ...}`` in its scrape config.
Health checks stay public because orchestrators probe them without secrets
and they reveal nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from cocoa.api.deps import CurrentUser, Manager
from cocoa.api.errors import ApiError
from cocoa.api.schemas import errors, json_errors
from cocoa.api.worker_metrics import WorkersCollector
from cocoa.db.driver import driver_for
from cocoa.db.engine import reading, writing
from cocoa.db.migrate import SchemaNotCurrent, check_current
from cocoa.db.storage import free_megabytes, storage_location, storage_problem
from cocoa.db.tables import jobs

router = APIRouter(tags=["health"])

# Jobs take seconds to hours: buckets from 1 s to 1 day.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
# Waiting in the queue should be short: buckets from 100 ms to 1 h.
WAIT_BUCKETS = (0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0)


class Health(BaseModel):
    """``/healthz``: the process answers. A named model so generated clients
    get a short, readable type (not ``HealthzHealthzGetResponse...``)."""

    status: Literal["ok"]


class DiskCheck(BaseModel):
    checked: bool = Field(description="False on PostgreSQL, whose disk this server cannot see.")
    free_mb: int | None = None
    min_free_mb: int | None = None
    reason: str | None = None


class Readiness(BaseModel):
    """``/readyz``: the database takes writes, the schema is current, the disk has room."""

    status: Literal["ready"]
    disk: DiskCheck


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    """The process is up (no database check: that is /readyz)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=errors(503))
def readyz(manager: Manager) -> dict[str, Any]:
    """The database takes writes, its schema is current and its disk has room."""
    engine = manager.engine
    try:
        check_current(engine, engine.url.render_as_string(hide_password=False))
        _check_write(engine)
    except SchemaNotCurrent as exc:
        raise ApiError(503, str(exc), "schema_not_current") from exc
    except sa.exc.SQLAlchemyError as exc:
        problem = storage_problem(exc, storage_location(engine))
        if problem is None:
            raise ApiError(503, f"Database unreachable: {type(exc).__name__}", "database_unreachable") from exc
        raise ApiError(503, problem.message, problem.code, problem.details(),
                       headers={"Retry-After": str(problem.retry_after)}) from exc
    return {"status": "ready", "disk": _check_disk(engine, manager.settings.min_free_disk_mb)}


def _check_write(engine: sa.Engine) -> None:
    """A real write, rolled back: takes SQLite's write lock (BEGIN IMMEDIATE)
    or PostgreSQL's row lock, and fails on a read-only database. It touches
    ``jobs`` too (no row) so a lock held on that table counts."""
    with writing(engine).connect() as conn, conn.begin() as transaction:
        conn.execute(jobs.update().where(sa.false()).values(status=jobs.c.status))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))
        transaction.rollback()


def _check_disk(engine: sa.Engine, min_free_mb: int) -> dict[str, Any]:
    """Free space of the SQLite database's volume against the threshold."""
    driver = driver_for(engine)
    database_file = driver.database_file(engine.url)
    if database_file is None:
        return {"checked": False, "reason": f"{driver.title}'s disk is on the database server; this server "
                "cannot see it. Watch it with the database host's monitoring."}
    folder = database_file.resolve().parent
    free = free_megabytes(folder)
    if free < min_free_mb:
        raise ApiError(503, f"Only {free} MB free on the disk holding {folder} (at least {min_free_mb} MB "
                       "wanted, COCOA_MIN_FREE_DISK_MB) — free space before the database fills it.",
                       "low_disk_space", {"free_mb": free, "min_free_mb": min_free_mb, "path": str(folder)},
                       headers={"Retry-After": "60"})
    return {"checked": True, "free_mb": free, "min_free_mb": min_free_mb}


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
          "description": "Prometheus text exposition format."},
    **json_errors(401, 503),
})
def metrics(_: CurrentUser, manager: Manager) -> Response:
    """Prometheus metrics about jobs, queried from the database at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector(manager.engine))
    registry.register(WorkersCollector(manager.engine, manager.settings.lease_seconds))
    try:
        body = generate_latest(registry)
    except sa.exc.SQLAlchemyError as exc:
        raise ApiError(503, f"Database unreachable: {type(exc).__name__}", "database_unreachable") from exc
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class JobsCollector:
    """Reads job statistics with a handful of aggregate queries per scrape."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        with reading(self.engine) as conn:
            yield self._jobs_by_status(conn)
            yield from self._items(conn)
            yield self._histogram(conn, "cocoa_job_duration_seconds",
                                  "Processing time of completed jobs (paused time excluded).",
                                  jobs.c.processing_seconds, jobs.c.status == "completed",
                                  DURATION_BUCKETS)
            yield self._histogram(conn, "cocoa_job_queue_wait_seconds",
                                  "Time from creation to first start (started_at - created_at).",
                                  driver_for(conn).seconds_between(jobs.c.created_at, jobs.c.started_at),
                                  jobs.c.started_at.is_not(None), WAIT_BUCKETS)

    def _jobs_by_status(self, conn: sa.Connection) -> Metric:
        family = GaugeMetricFamily("cocoa_jobs", "Jobs by type and status (archived included).",
                                   labels=["type", "status"])
        rows: list[Any] = list(conn.execute(sa.select(jobs.c.type, jobs.c.status, sa.func.count())
                                            .group_by(jobs.c.type, jobs.c.status)))
        for type_name, status, count in rows:
            family.add_metric([type_name, status], int(count))
        return family

    def _items(self, conn: sa.Connection) -> Iterable[Metric]:
        processed = CounterMetricFamily("cocoa_job_items_processed", "Items processed, by job type.",
                                        labels=["type"])
        failed = CounterMetricFamily("cocoa_job_item_errors", "Item errors recorded, by job type.",
                                     labels=["type"])
        rows: list[Any] = list(conn.execute(sa.select(jobs.c.type, sa.func.sum(jobs.c.processed),
                                                      sa.func.sum(jobs.c.error_count))
                                            .group_by(jobs.c.type)))
        for type_name, n_processed, n_errors in rows:
            processed.add_metric([type_name], float(n_processed or 0))
            failed.add_metric([type_name], float(n_errors or 0))
        return processed, failed

    def _histogram(self, conn: sa.Connection, name: str, documentation: str,
                   value: sa.ColumnElement[Any], where: sa.ColumnElement[bool],
                   bounds: tuple[float, ...]) -> Metric:
        """Cumulative buckets computed in SQL, one row per job type."""
        columns = [sa.func.sum(sa.case((value <= b, 1), else_=0)) for b in bounds]
        rows: list[Any] = list(conn.execute(
            sa.select(jobs.c.type, sa.func.count(), sa.func.sum(value), *columns)
            .where(where).group_by(jobs.c.type)))
        family = HistogramMetricFamily(name, documentation, labels=["type"])
        for row in rows:
            type_name, count, total, *cumulative = row
            buckets = [(_le(b), float(c or 0)) for b, c in zip(bounds, cumulative, strict=True)]
            buckets.append(("+Inf", float(count)))
            family.add_metric([type_name], buckets, float(total or 0.0))
        return family


def _le(bound: float) -> str:
    return f"{bound:g}" if bound < 1e6 else str(bound)

