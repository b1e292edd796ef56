"""Finding jobs and acting on many (issue 19): listing filters, id prefixes,
bulk cancel and bulk retry - over a real server without a worker, so jobs stay
exactly where the test puts them, on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from api_helpers import assert_error, create_noop

from cocoa.db.tables import jobs
from cocoa.jobs.manager import JobManager, Lease
from cocoa.jobs.model import Job

VOTER_CSV = b"first_name,last_name,address,city,state,zip\nAda,Lovelace,1 Main St,Durham,NC,27701\n"


def failed_noop(manager: JobManager, created_by: str = "admin") -> Job:
    """A noop job failed through the worker's own operations (claim, fail)."""
    job = manager.create("noop", {"items": 1}, created_by=created_by)
    claimed = manager.claim("test-worker", only_types=["noop"])
    assert claimed is not None and claimed.id == job.id
    return manager.fail(Lease(job.id, "test-worker", claimed.attempt), "boom")


def ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {job["id"] for job in response.json()["jobs"]}


def test_listing_filters(idle_server: Any, idle_manager: JobManager) -> None:
    failed = failed_noop(idle_manager)
    cancelled = create_noop(idle_manager, items=1)
    idle_manager.control(cancelled.id, "cancel")
    pending = idle_manager.create("noop", {"items": 1}, created_by="alice")
    with idle_server.client() as client:
        listing = "/api/v1/jobs"
        noop = {"type": "noop"}
        assert ids(client.get(listing, params={**noop, "status": ["failed", "cancelled"]})) == {failed.id,
                                                                                             cancelled.id}
        assert ids(client.get(listing, params={**noop, "status": "failed,cancelled"})) == {failed.id, cancelled.id}
        assert ids(client.get(listing, params={**noop, "status": "pending"})) == {pending.id}
        assert ids(client.get(listing, params={**noop, "created_by": "alice"})) == {pending.id}
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        assert ids(client.get(listing, params={**noop, "created_after": future})) == set()
        assert ids(client.get(listing, params={**noop, "created_after": past})) == {failed.id, cancelled.id,
                                                                                   pending.id}
        assert ids(client.get(listing, params={**noop, "created_before": past})) == set()
        assert ids(client.get(listing, params={**noop, "q": pending.id[:8]})) == {pending.id}
        assert ids(client.get(listing, params={**noop, "q": pending.id.upper()})) == {pending.id}
        error = assert_error(client.get(listing, params={"created_after": "last tuesday"}), 422, "invalid_datetime")
        assert "ISO 8601" in error["message"] and "created_after" in error["message"]
        error = assert_error(client.get(listing, params={"status": "failed,done"}), 422, "validation_error")
        assert "'done'" in error["message"] and "cancelled" in error["message"]
        assert_error(client.get(listing, params={"created_after": future, "created_before": past}), 422)


def test_search_by_file_name(idle_server: Any) -> None:
    with idle_server.client() as client:
        response = client.post("/api/v1/voters/import", data={"format": "simple_csv"},
                               files={"file": ("Precinct_12 voters.csv", VOTER_CSV, "text/csv")})
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        assert ids(client.get("/api/v1/jobs", params={"q": "precinct_12"})) == {job_id}
        assert ids(client.get("/api/v1/jobs", params={"q": "nct_1"})) == {job_id}
        assert ids(client.get("/api/v1/jobs", params={"q": "precinct%"})) == set()  # LIKE wildcards are text
        assert ids(client.get("/api/v1/jobs", params={"q": "precinct_13"})) == set()


def insert_job_with_id(manager: JobManager, template: Job, job_id: str) -> None:
    with manager.engine.begin() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.id == template.id)).one()._asdict()
        conn.execute(jobs.insert().values({**row, "id": job_id}))


def test_id_prefixes_wherever_a_job_id_is_taken(idle_server: Any, idle_manager: JobManager) -> None:
    job = create_noop(idle_manager, items=1)
    with idle_server.client() as client:
        assert client.get(f"/api/v1/jobs/{job.id[:8]}").json()["id"] == job.id
        assert client.get(f"/api/v1/jobs/{job.id[:6].upper()}").json()["id"] == job.id
        assert client.get(f"/api/v1/jobs/{job.id[:8]}/errors").status_code == 200
        paused = client.post(f"/api/v1/jobs/{job.id[:10]}/pause")
        assert paused.status_code == 200 and paused.json()["id"] == job.id
        error = assert_error(client.get(f"/api/v1/jobs/{job.id[:5]}"), 404, "job_not_found")
        assert "at least 6" in error["message"]
        assert_error(client.get("/api/v1/jobs/0000000000"), 404, "job_not_found")
        twins = [f"abcdef12-0000-4000-8000-00000000000{n}" for n in (1, 2)]
        for twin in twins:
            insert_job_with_id(idle_manager, job, twin)
        error = assert_error(client.get("/api/v1/jobs/abcdef12"), 409, "ambiguous_job_id")
        assert error["details"]["candidates"] == twins and twins[0] in error["message"]
        assert client.get("/api/v1/jobs/abcdef12-0000-4000-8000-000000000002").json()["id"] == twins[1]
        assert client.get("/api/v1/jobs/abcdef12-0000-4000-8000-0000000000").status_code == 409


def test_bulk_cancel(idle_server: Any, idle_manager: JobManager) -> None:
    done = failed_noop(idle_manager)  # first: the claim takes the oldest pending noop job
    first, second = create_noop(idle_manager, items=1), create_noop(idle_manager, items=1)
    missing = str(uuid.uuid4())
    body = {"job_ids": [first.id, second.id[:8], done.id, missing]}
    with idle_server.client(idle_server.viewer_token) as viewer:
        assert_error(viewer.post("/api/v1/jobs/bulk/cancel", json=body), 403)
    with idle_server.client() as client:
        dry = client.post("/api/v1/jobs/bulk/cancel", json={**body, "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert dry.json()["count"] == 2 and dry.json()["job_ids"] == [first.id, second.id]
        assert dry.json()["cancelled"] == []
        assert {s["job_id"] for s in dry.json()["skipped"]} == {done.id, missing}
        assert client.get(f"/api/v1/jobs/{first.id}").json()["status"] == "pending"  # dry: nothing changed
        real = client.post("/api/v1/jobs/bulk/cancel", json=body).json()
        assert real["count"] == 2 and [c["job_id"] for c in real["cancelled"]] == [first.id, second.id]
        for job in (first, second):
            assert client.get(f"/api/v1/jobs/{job.id}").json()["status"] == "cancelled"
        assert client.get(f"/api/v1/jobs/{done.id}").json()["status"] == "failed"
        assert_error(client.post("/api/v1/jobs/bulk/cancel", json={"job_ids": []}), 422)
        assert_error(client.post("/api/v1/jobs/bulk/cancel", json={"ids": [first.id]}), 422)
        assert_error(client.post("/api/v1/jobs/bulk/cancel", data={"job_ids": first.id}), 415)


def test_bulk_retry(idle_server: Any, idle_manager: JobManager) -> None:
    mine = [failed_noop(idle_manager), failed_noop(idle_manager)]
    theirs = failed_noop(idle_manager, created_by="alice")
    filter_ = {"type": "noop", "status": "failed", "created_by": "admin"}
    with idle_server.client(idle_server.viewer_token) as viewer:
        assert_error(viewer.post("/api/v1/jobs/bulk/retry", json=filter_), 403)
    with idle_server.client() as client:
        dry = client.post("/api/v1/jobs/bulk/retry", json={**filter_, "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert dry.json()["count"] == 2 and set(dry.json()["job_ids"]) == {j.id for j in mine}
        assert dry.json()["filter"]["created_by"] == "admin"
        real = client.post("/api/v1/jobs/bulk/retry", json=filter_).json()
        assert real["count"] == 2 and len(real["retried"]) == 2
        for item in real["retried"]:
            new = client.get(f"/api/v1/jobs/{item['new_job_id']}").json()
            assert new["retry_of"] == item["job_id"] and new["status"] == "pending"
        again = client.post("/api/v1/jobs/bulk/retry", json={**filter_, "dry_run": True}).json()
        assert again["count"] == 0  # already retried: pressing twice queues nothing twice
        everyone = client.post("/api/v1/jobs/bulk/retry", json={"type": "noop", "dry_run": True}).json()
        assert everyone["job_ids"] == [theirs.id]
        error = assert_error(client.post("/api/v1/jobs/bulk/retry", json={"status": "pending"}), 422)
        assert "failed" in error["message"]
        assert_error(client.post("/api/v1/jobs/bulk/retry", json={"created_after": "soon"}), 422,
                     "invalid_datetime")
