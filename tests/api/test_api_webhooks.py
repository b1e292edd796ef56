"""Webhooks (issue 19): a signed POST to a real loopback receiver when a job
ends, retried with backoff, never delaying the job - on both backends, with
``cocoa serve``'s embedded worker doing the sending."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_helpers import assert_error, manager_for, root, wait_for, wait_status
from webhook_receiver import receiving

from cocoa.db.tables import webhook_deliveries
from cocoa.jobs.manager import JobManager
from cocoa.jobs.webhooks import verify

SECRET = "test-webhook-secret"
GEOCODE = "/api/v1/jobs/geocoding"
VOTER_CSV = b"first_name,last_name,address,city,state,zip\nAda,Lovelace,1 Main St,Durham,NC,27701\n"


@pytest.fixture
def live_server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """The shared ``live_server`` (and so ``manager``) with webhooks on: loopback
    receivers allowed, a signing secret, a quick backoff, three attempts."""
    yield from root.serving(db_url, tmp_path, COCOA_WEBHOOK_ALLOW_PRIVATE="true", COCOA_WEBHOOK_SECRET=SECRET,
                            COCOA_WEBHOOK_BACKOFF_SECONDS="0.2", COCOA_WEBHOOK_MAX_ATTEMPTS="3")


def deliveries(manager: JobManager, job_id: str) -> list[Any]:
    with manager.engine.connect() as conn:
        return list(conn.execute(sa.select(webhook_deliveries).where(webhook_deliveries.c.job_id == job_id)
                                 .order_by(webhook_deliveries.c.id)).all())


def delivery_in(manager: JobManager, job_id: str, status: str) -> Any:
    found = deliveries(manager, job_id)
    return found[0] if found and found[0].status == status else None


def test_signed_delivery_when_a_job_completes(live_server: Any, manager: JobManager) -> None:
    with receiving() as receiver:
        job = manager.create("noop", {"items": 3}, created_by="admin", webhook_url=receiver.url)
        with live_server.client() as client:
            wait_status(client, job.id, "completed")
        row = wait_for(lambda: delivery_in(manager, job.id, "delivered"), what="delivery")
        assert row.attempts == 1 and row.last_status == 200 and row.event == "job.completed"
        assert len(receiver.received) == 1
        got = receiver.received[0]
        assert got.path == "/hook" and got.headers["content-type"] == "application/json"
        timestamp = got.headers["x-cocoa-timestamp"]
        assert verify(SECRET, timestamp, got.body, got.headers["x-cocoa-signature"])
        assert not verify("another-secret", timestamp, got.body, got.headers["x-cocoa-signature"])
        assert not verify(SECRET, str(int(timestamp) + 1), got.body, got.headers["x-cocoa-signature"])
        body = json.loads(got.body)
        assert body["event"] == "job.completed"
        assert body["job"]["id"] == job.id and body["job"]["status"] == "completed"
        assert body["job"]["progress"]["processed"] == 3


def test_a_500_is_retried_until_the_receiver_accepts(live_server: Any, manager: JobManager) -> None:
    with receiving(statuses=[500, 200]) as receiver:
        job = manager.create("noop", {"items": 2}, created_by="admin", webhook_url=receiver.url)
        row = wait_for(lambda: delivery_in(manager, job.id, "delivered"), what="retried delivery")
        assert row.attempts == 2 and row.last_status == 200 and row.last_error is None
        assert len(receiver.received) == 2
        first, second = (json.loads(r.body) for r in receiver.received)
        assert first == second and first["job"]["id"] == job.id


def test_a_receiver_that_is_down_is_given_up_after_the_attempts(live_server: Any,
                                                                manager: JobManager) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    job = manager.create("noop", {"items": 2}, created_by="admin", webhook_url=url)
    with live_server.client() as client:
        wait_status(client, job.id, "completed")
    row = wait_for(lambda: delivery_in(manager, job.id, "failed"), what="given-up delivery")
    assert row.attempts == 3 and row.last_status is None and "Connect" in row.last_error


def test_a_slow_receiver_does_not_delay_the_next_job(live_server: Any, manager: JobManager) -> None:
    """The receiver holds the first delivery open; the job is completed
    already, and a second job runs to completion meanwhile."""
    with receiving(hold=True) as receiver:
        first = manager.create("noop", {"items": 2}, created_by="admin", webhook_url=receiver.url)
        assert receiver.arrived.wait(30), "the first delivery never arrived"
        with live_server.client() as client:
            assert client.get(f"/api/v1/jobs/{first.id}").json()["status"] == "completed"
            second = manager.create("noop", {"items": 2}, created_by="admin")
            wait_status(client, second.id, "completed")
        assert not receiver.release.is_set() and deliveries(manager, first.id)[0].status == "pending"
        receiver.release.set()
        wait_for(lambda: delivery_in(manager, first.id, "delivered"), what="held delivery")


def test_cancelling_a_pending_job_is_delivered(live_server: Any, manager: JobManager) -> None:
    with receiving() as receiver:
        job = manager.create("noop", {"items": 5000, "delay_ms": 2, "batch_size": 10}, created_by="admin",
                                  webhook_url=receiver.url)
        with live_server.client() as client:  # pending or running: cancelled now or at a batch boundary
            assert client.post(f"/api/v1/jobs/{job.id}/cancel").status_code == 200
            wait_status(client, job.id, "cancelled")
        wait_for(lambda: delivery_in(manager, job.id, "delivered"), what="cancel delivery")
        assert json.loads(receiver.received[0].body)["event"] == "job.cancelled"


def test_the_global_url_hears_every_job(db_url: str, tmp_path: Path) -> None:
    with receiving() as receiver:
        server = root.start_live_server(db_url, tmp_path, COCOA_WEBHOOK_URL=receiver.url,
                                        COCOA_WEBHOOK_SECRET=SECRET)
        manager = manager_for(server, tmp_path)
        try:
            job = manager.create("noop", {"items": 1, "fail_at": 0}, created_by="admin")
            wait_for(lambda: delivery_in(manager, job.id, "delivered"), what="global delivery")
            body = json.loads(receiver.received[0].body)
            assert body["event"] == "job.failed" and body["job"]["error"]
        finally:
            manager.engine.dispose()
            root.stop_live_server(server)


def test_webhook_url_checks_at_creation(module_server: Any) -> None:
    """Private addresses are refused by default (SSRF); the field is checked
    before any job exists, on the JSON and the multipart endpoints."""
    with module_server.client() as admin:
        for url, words in (("ftp://hooks.example.org/x", "http:// or https://"),
                           ("http://127.0.0.1:9/hook", "internal address"),
                           ("http://10.1.2.3/hook", "internal address"),
                           ("http://[::1]/hook", "internal address"),
                           ("http://user:pw@hooks.example.org/", "user name")):
            error = assert_error(admin.post(GEOCODE, json={"webhook_url": url}), 422, "invalid_webhook_url")
            assert words in error["message"], error
        error = assert_error(admin.post("/api/v1/voters/import", files={"file": ("v.csv", b"a,b\n1,2\n")},
                                        data={"webhook_url": "http://169.254.169.254/latest"}),
                             422, "invalid_webhook_url")
        assert "COCOA_WEBHOOK_ALLOW_PRIVATE" in error["message"]
        assert admin.get("/api/v1/jobs", params={"type": "geocode_households"}).json()["total"] == 0
    with module_server.client(module_server.viewer_token) as viewer:
        assert_error(viewer.post(GEOCODE, json={"webhook_url": "https://hooks.example.org/"}), 403)


def test_an_import_takes_a_webhook_url(live_server: Any, manager: JobManager) -> None:
    """The multipart endpoints take the field too (and keep it out of the job's params)."""
    with receiving() as receiver, live_server.client() as admin:
        response = admin.post("/api/v1/voters/import", files={"file": ("v.csv", VOTER_CSV, "text/csv")},
                              data={"format": "simple_csv", "webhook_url": receiver.url})
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        assert "webhook_url" not in json.dumps(response.json()["job"]["params"])
        wait_status(admin, job_id, "completed")
        wait_for(lambda: delivery_in(manager, job_id, "delivered"), what="import delivery")
        assert json.loads(receiver.received[0].body)["job"]["id"] == job_id
