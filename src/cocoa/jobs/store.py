"""What the three audiences of the ``jobs`` table share: engines, wake-ups.

:class:`JobStore` holds the engine (durable, for the API), the worker's
engine (see :meth:`cocoa.db.driver.Driver.worker_engine`), the backend's
driver and the in-process wake-up listeners. The client, lease and
maintenance operations are subclasses of it, so each can also be used on
its own; :class:`cocoa.jobs.manager.JobManager` is all three on one store.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.db.driver import driver_for
from cocoa.db.engine import writing
from cocoa.jobs import sql
from cocoa.jobs.model import Job


class JobNotFound(Exception):
    pass


class JobStore:
    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.driver = driver_for(engine)
        self.writer = writing(engine)
        self.worker_engine = self.driver.worker_engine(engine, settings)
        # In-process listeners (the embedded worker) woken when work appears.
        self._wake_listeners: list[Callable[[], None]] = []

    def dispose(self) -> None:
        self.engine.dispose()
        self.driver.dispose_worker_engine(self.worker_engine)

    def add_wake_listener(self, callback: Callable[[], None]) -> None:
        self._wake_listeners.append(callback)

    def _wake_local(self) -> None:
        for callback in self._wake_listeners:
            callback()

    def _notify(self, conn: sa.Connection, type_name: str) -> None:
        """Wake the workers of other processes waiting for ``type_name`` (at COMMIT)."""
        self.driver.notify(conn, sql.NOTIFY_CHANNEL, type_name)

    def _reader(self) -> AbstractContextManager[sa.Connection]:
        """For the API's reads (see :meth:`cocoa.db.driver.Driver.autocommit`)."""
        return self.driver.autocommit(self.engine)

    def _single_statement(self) -> AbstractContextManager[sa.Connection]:
        """For worker operations that are one statement, atomic on their own."""
        return self.driver.single_statement(self.worker_engine)


def get_job(conn: sa.Connection, job_id: str) -> Job:
    row = conn.execute(sql.GET_JOB, {"job_id": job_id}).one_or_none()
    if row is None:
        raise JobNotFound(f"No job with id {job_id!r}.")
    return Job.from_row(row)


def run_seconds(job: Job, now: Any) -> float:
    """Processing time so far: earlier runs plus the current one."""
    spent = job.processing_seconds
    if job.run_started_at is not None:
        spent += max((now - job.run_started_at).total_seconds(), 0.0)
    return spent
