"""The registry of worker processes: who serves the queue right now.

Each worker (embedded in ``cocoa serve`` or a standalone ``cocoa worker``)
registers a row when it starts, refreshes ``last_heartbeat`` from its
heartbeat thread, and deletes the row on a clean exit. A worker is *live*
while its heartbeat is younger than the lease: the same rule by which its
jobs' leases expire, so "no live worker" and "its jobs will be rescued"
agree. Maintenance prunes the rows of dead workers (a SIGKILLed process
never deregisters); their jobs are rescued by the reaper as before.

The job a worker runs now is not stored here but read from the jobs table
(``lease_owner``), which is always current.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import metadata
from typing import Any

import sqlalchemy as sa

from cocoa.db.engine import reading, writing
from cocoa.db.tables import jobs, workers
from cocoa.jobs.model import Status, as_utc, iso, utcnow


def package_version() -> str:
    try:
        return metadata.version("cocoa-canvas-jobs")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    version: str
    types: list[str] | None  # None: every type
    started_at: datetime
    last_heartbeat: datetime
    live: bool
    current_jobs: list[dict[str, str]]  # [{id, type}] of the jobs it holds leases on

    def serves(self, type_name: str) -> bool:
        return self.types is None or type_name in self.types

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "host": self.host, "pid": self.pid, "version": self.version,
            "types": self.types, "started_at": iso(self.started_at),
            "last_heartbeat": iso(self.last_heartbeat), "live": self.live,
            "current_jobs": self.current_jobs,
        }


def register(engine: sa.Engine, worker_id: str, types: list[str] | None) -> None:
    """Record this process as a worker (replacing a stale row of the same id)."""
    now = utcnow()
    row = {"id": worker_id, "host": socket.gethostname()[:255], "pid": os.getpid(),
           "version": package_version()[:64], "types": sorted(types) if types else None,
           "started_at": now, "last_heartbeat": now}
    with writing(engine).begin() as conn:
        conn.execute(workers.delete().where(workers.c.id == worker_id))
        conn.execute(workers.insert().values(**row))


def heartbeat(engine: sa.Engine, worker_id: str, types: list[str] | None) -> None:
    """Refresh the heartbeat; re-register if maintenance pruned the row
    meanwhile (a worker stalled longer than the lease, then came back)."""
    with writing(engine).begin() as conn:
        updated = conn.execute(workers.update().where(workers.c.id == worker_id)
                               .values(last_heartbeat=utcnow())).rowcount
    if not updated:
        register(engine, worker_id, types)


def deregister(engine: sa.Engine, worker_id: str) -> None:
    with writing(engine).begin() as conn:
        conn.execute(workers.delete().where(workers.c.id == worker_id))


def prune_dead(conn: sa.Connection, lease_seconds: float, now: datetime | None = None) -> int:
    """Delete workers whose heartbeat is older than the lease; how many."""
    cutoff = (now or utcnow()) - timedelta(seconds=lease_seconds)
    return int(conn.execute(workers.delete().where(workers.c.last_heartbeat < cutoff)).rowcount or 0)


def list_workers(engine: sa.Engine, lease_seconds: float) -> list[WorkerInfo]:
    """Every registered worker, live ones first, each with the jobs it runs."""
    now = utcnow()
    cutoff = now - timedelta(seconds=lease_seconds)
    with reading(engine) as conn:
        rows = conn.execute(sa.select(workers).order_by(workers.c.started_at, workers.c.id)).all()
        running = conn.execute(sa.select(jobs.c.id, jobs.c.type, jobs.c.lease_owner).where(
            jobs.c.status == Status.PROCESSING.value, jobs.c.lease_owner.is_not(None))).all()
    held: dict[str, list[dict[str, str]]] = {}
    for job in running:
        held.setdefault(job.lease_owner, []).append({"id": job.id, "type": job.type})
    found = [
        WorkerInfo(row.id, row.host, int(row.pid), row.version, row.types,
                   as_utc(row.started_at) or now, as_utc(row.last_heartbeat) or now,
                   (as_utc(row.last_heartbeat) or now) >= cutoff, held.get(row.id, []))
        for row in rows
    ]
    return sorted(found, key=lambda w: not w.live)


def unserved_pending(engine: sa.Engine, lease_seconds: float, type_names: list[str]) -> dict[str, int]:
    """Pending jobs (of ``type_names``) that no live worker serves, by type:
    they will wait for ever unless someone starts a worker."""
    live = [w for w in list_workers(engine, lease_seconds) if w.live]
    with reading(engine) as conn:
        rows: list[Any] = list(conn.execute(sa.select(jobs.c.type, sa.func.count()).where(
            jobs.c.status == Status.PENDING.value, jobs.c.archived_at.is_(None),
            jobs.c.type.in_(type_names)).group_by(jobs.c.type)))
    return {str(t): int(n) for t, n in rows if not any(w.serves(str(t)) for w in live)}


def queue_stats(conn: sa.Connection) -> list[tuple[str, int, datetime | None]]:
    """Per type: pending jobs and the creation time of the oldest."""
    rows: list[Any] = list(conn.execute(
        sa.select(jobs.c.type, sa.func.count(), sa.func.min(jobs.c.created_at))
        .where(jobs.c.status == Status.PENDING.value).group_by(jobs.c.type)))
    return [(str(row[0]), int(row[1]), as_utc(row[2])) for row in rows]


def live_count(conn: sa.Connection, lease_seconds: float) -> int:
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    return int(conn.execute(sa.select(sa.func.count()).select_from(workers)
                            .where(workers.c.last_heartbeat >= cutoff)).scalar_one())
