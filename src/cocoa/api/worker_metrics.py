"""Prometheus metrics about who serves the queue and how long it waits (issue 19).

Registered next to :class:`cocoa.api.health.JobsCollector` on every scrape:
live workers, and per job type the pending jobs and the age of the oldest -
the two numbers that say "nobody is working this queue" before users do.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric

from cocoa.db.engine import reading
from cocoa.jobs import workers as worker_registry
from cocoa.jobs.model import utcnow


class WorkersCollector:
    def __init__(self, engine: sa.Engine, lease_seconds: float) -> None:
        self.engine = engine
        self.lease_seconds = lease_seconds

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        with reading(self.engine) as conn:
            live = worker_registry.live_count(conn, self.lease_seconds)
            queues = worker_registry.queue_stats(conn)
        workers = GaugeMetricFamily("cocoa_workers_live", "Workers whose heartbeat is younger than the lease.")
        workers.add_metric([], live)
        yield workers
        depth = GaugeMetricFamily("cocoa_queue_depth", "Pending jobs, by type.", labels=["type"])
        oldest = GaugeMetricFamily("cocoa_queue_oldest_pending_age_seconds",
                                   "Age of the oldest pending job, by type.", labels=["type"])
        for type_name, count, created in queues:
            depth.add_metric([type_name], count)
            if created is not None:
                oldest.add_metric([type_name], max((now - created).total_seconds(), 0.0))
        yield depth
        yield oldest
