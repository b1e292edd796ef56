"""The webhook outbox (issue 19), on SQLite and PostgreSQL: a delivery row is
written in the transaction that finishes a job - by every path that can
finish one - and only when a URL applies; plus the URL check and backoff."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.db.tables import jobs, webhook_deliveries
from cocoa.jobs.manager import JobManager, Lease
from cocoa.jobs.model import utcnow
from cocoa.jobs.webhook_sender import backoff
from cocoa.jobs.webhooks import WebhookUrlError, check_url, signature, verify

URL = "http://hooks.example.org/cocoa"


@pytest.fixture
def manager(db_engine: sa.Engine) -> JobManager:
    return JobManager(db_engine, Settings(lease_seconds=2, poison_limit=1))


def outbox(manager: JobManager, job_id: str) -> list[Any]:
    with manager.engine.connect() as conn:
        return list(conn.execute(sa.select(webhook_deliveries)
                                 .where(webhook_deliveries.c.job_id == job_id)).all())


def claimed(manager: JobManager, url: str | None = URL) -> Lease:
    job = manager.create("noop", {"items": 5}, created_by="t", webhook_url=url)
    got = manager.claim("w1", only_types=["noop"])
    assert got is not None and got.id == job.id
    return Lease(job.id, "w1", got.attempt)


def test_fail_writes_one_delivery(manager: JobManager) -> None:
    lease = claimed(manager)
    manager.fail(lease, "boom")
    [row] = outbox(manager, lease.job_id)
    assert (row.url, row.event, row.status, row.attempts) == (URL, "job.failed", "pending", 0)


def test_no_url_no_delivery(manager: JobManager) -> None:
    lease = claimed(manager, url=None)
    manager.fail(lease, "boom")
    assert outbox(manager, lease.job_id) == []


def test_global_url_applies_to_jobs_without_their_own(db_engine: sa.Engine) -> None:
    manager = JobManager(db_engine, Settings(webhook_url="https://global.example.org/h"))
    own = manager.create("noop", {"items": 1}, created_by="t", webhook_url=URL)
    plain = manager.create("noop", {"items": 1}, created_by="t")
    for job in (own, plain):
        manager.control(job.id, "cancel")
    assert [r.url for r in outbox(manager, own.id)] == [URL]
    assert [(r.url, r.event) for r in outbox(manager, plain.id)] == [("https://global.example.org/h",
                                                                       "job.cancelled")]


def test_pause_and_resume_write_nothing(manager: JobManager) -> None:
    job = manager.create("noop", {"items": 1}, created_by="t", webhook_url=URL)
    manager.control(job.id, "pause")
    manager.control(job.id, "resume")
    assert outbox(manager, job.id) == []


def test_reaped_poison_job_is_delivered(manager: JobManager) -> None:
    lease = claimed(manager)
    with manager.engine.begin() as conn:  # the worker died: its lease ran out
        conn.execute(jobs.update().where(jobs.c.id == lease.job_id).values(lease_expires_at=utcnow()))
    assert manager.reap_expired() == [lease.job_id]
    assert [r.event for r in outbox(manager, lease.job_id)] == ["job.failed"]


def test_a_retry_keeps_the_jobs_url(manager: JobManager) -> None:
    job = manager.create("noop", {"items": 1}, created_by="t", webhook_url=URL)
    manager.control(job.id, "cancel")
    retry = manager.retry(job.id, created_by="t")
    manager.control(retry.id, "cancel")
    assert [r.url for r in outbox(manager, retry.id)] == [URL]


def test_url_check() -> None:
    assert check_url("https://127.0.0.1/x", allow_private=True) == "https://127.0.0.1/x"
    for url in ("http://127.0.0.1/x", "http://192.168.1.5/", "http://[fe80::1]/", "http://0.0.0.0/",
                "http://[::ffff:10.0.0.1]/", "javascript:alert(1)", "http:///nohost", "http://h:99999/"):
        with pytest.raises(WebhookUrlError):
            check_url(url, allow_private=False)


def test_signature_and_backoff() -> None:
    header = signature("s", "100", b"{}")
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify("s", "100", b"{}", header) and not verify("s", "100", b"{ }", header)
    settings = Settings(webhook_backoff_seconds=2, webhook_max_backoff_seconds=10)
    assert [backoff(settings, n) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]
