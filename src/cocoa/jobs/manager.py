"""Every database operation of the jobs engine, by audience.

No part of the program writes to the ``jobs`` table except through these
operations, each one named, with one transaction:

* :mod:`cocoa.jobs.client` - what the API, the CLI and the web pages do:
  create, read, list, count, control, retry;
* :mod:`cocoa.jobs.leases` - the worker's lease protocol: claim, heartbeat,
  progress, batch commits, release, failure;
* :mod:`cocoa.jobs.maintenance` - reaping expired leases, time limits,
  retention;
* :mod:`cocoa.jobs.sql` - the statements they run, named and described.

:class:`JobManager` is the three on one :class:`~cocoa.jobs.store.JobStore`
(one engine, one worker engine, shared wake-up listeners): the object the
composition roots (app factory, CLI) build and hand to the worker. Code that
serves one audience may type its argument as the narrower class.
"""

from __future__ import annotations

from cocoa.jobs.client import JobClient, UploadSource
from cocoa.jobs.leases import Lease, LeaseLost, WorkerLeases
from cocoa.jobs.maintenance import Maintenance
from cocoa.jobs.sql import NOTIFY_CHANNEL
from cocoa.jobs.store import JobNotFound

__all__ = ["NOTIFY_CHANNEL", "JobManager", "JobNotFound", "Lease", "LeaseLost", "UploadSource"]


class JobManager(JobClient, WorkerLeases, Maintenance):
    """The client, lease and maintenance operations on one store."""
