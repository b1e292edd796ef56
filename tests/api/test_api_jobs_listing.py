"""``GET /jobs``, ``GET /jobs/{id}`` and ``GET /jobs/{id}/errors``: pages,
filters, totals and parameter validation, on both backends.

The listing tests use a server without a worker so each job stays in exactly
the state the test put it in.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import httpx
import pytest
from api_helpers import assert_error, create_noop, wait_status

from cocoa.jobs.manager import JobManager, UploadSource
from cocoa.jobs.types import all_job_types


def noop_jobs(manager: JobManager, n: int) -> list[str]:
    return [create_noop(manager, items=1).id for _ in range(n)]


def page(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_pages_are_newest_first_and_total_counts_all_matches(idle_server: Any,
                                                             idle_manager: JobManager) -> None:
    created = noop_jobs(idle_manager, 7)
    with idle_server.client() as client:
        pages = [page(client, type="noop", limit=3, offset=o) for o in (0, 3, 6)]
    assert [p["total"] for p in pages] == [7, 7, 7]
    assert [(p["limit"], p["offset"]) for p in pages] == [(3, 0), (3, 3), (3, 6)]
    assert [len(p["jobs"]) for p in pages] == [3, 3, 1]
    listed = [j["id"] for p in pages for j in p["jobs"]]
    assert listed == list(reversed(created))


def test_offset_past_the_end_is_an_empty_page_with_the_total(idle_server: Any,
                                                             idle_manager: JobManager) -> None:
    noop_jobs(idle_manager, 2)
    with idle_server.client() as client:
        body = page(client, type="noop", offset=50)
    assert body["jobs"] == [] and body["total"] == 2


def test_status_filter(idle_server: Any, idle_manager: JobManager) -> None:
    ids = noop_jobs(idle_manager, 5)
    idle_manager.control(ids[0], "pause")
    idle_manager.control(ids[1], "pause")
    idle_manager.control(ids[2], "cancel")
    with idle_server.client() as client:
        paused = page(client, type="noop", status="paused")
        cancelled = page(client, type="noop", status="cancelled")
        pending = page(client, type="noop", status="pending")
        completed = page(client, type="noop", status="completed")
    assert {j["id"] for j in paused["jobs"]} == {ids[0], ids[1]} and paused["total"] == 2
    assert [j["id"] for j in cancelled["jobs"]] == [ids[2]] and cancelled["total"] == 1
    assert {j["id"] for j in pending["jobs"]} == {ids[3], ids[4]} and pending["total"] == 2
    assert all(j["status"] == "paused" for j in paused["jobs"])
    assert completed == {"jobs": [], "total": 0, "limit": 50, "offset": 0}


def test_noop_jobs_are_hidden_unless_asked_for(idle_server: Any, idle_manager: JobManager) -> None:
    noop_jobs(idle_manager, 2)
    visible = None
    if "import_voters" in all_job_types():
        upload = UploadSource(io.BytesIO(b"first_name,last_name,address\nAda,Lovelace,1 Main St\n"), "v.csv",
                              "text/csv")
        visible = idle_manager.create("import_voters", {"format": "simple_csv", "mode": "full"},
                                      created_by="admin", upload=upload).id
    with idle_server.client() as client:
        default = page(client)
        by_type = page(client, type="noop")
    assert by_type["total"] == 2
    assert all(j["type"] != "noop" for j in default["jobs"])
    assert [j["id"] for j in default["jobs"]] == ([visible] if visible else [])
    assert default["total"] == (1 if visible else 0)


def test_type_filter(idle_server: Any, idle_manager: JobManager) -> None:
    assert "import_voters" in all_job_types(), "job type import_voters is not registered"
    noop_jobs(idle_manager, 1)
    upload = UploadSource(io.BytesIO(b"first_name,last_name,address\nAda,Lovelace,1 Main St\n"), "v.csv",
                          "text/csv")
    job = idle_manager.create("import_voters", {"format": "simple_csv", "mode": "full"},
                              created_by="admin", upload=upload)
    with idle_server.client() as client:
        body = page(client, type="import_voters")
        none = page(client, type="parcel_import") if "parcel_import" in all_job_types() else None
    assert [j["id"] for j in body["jobs"]] == [job.id] and body["total"] == 1
    assert none is None or none["total"] == 0


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 201}, {"limit": 1000}, {"limit": "abc"}, {"offset": -1}, {"offset": "x"},
    {"status": "bogus"}, {"status": "PENDING"}, {"type": "bogus"}, {"type": ""},
])
def test_bad_list_parameters_are_422(module_server: Any, params: dict[str, Any]) -> None:
    with module_server.client() as client:
        error = assert_error(client.get("/api/v1/jobs", params=params), 422)
    assert error["code"] in {"validation_error", "unknown_job_type"}
    name = next(iter(params))
    assert name in error["message"] or name in str(error["details"]), error


def test_limit_bounds_are_inclusive(module_server: Any) -> None:
    with module_server.client() as client:
        assert page(client, limit=1)["limit"] == 1
        assert page(client, limit=200)["limit"] == 200
        assert page(client)["limit"] == 50  # the default


def test_get_one_job_and_404(module_server: Any, tmp_path: Any) -> None:
    from api_helpers import manager_for

    manager = manager_for(module_server, tmp_path)
    job = create_noop(manager, items=2)
    manager.engine.dispose()
    with module_server.client(module_server.viewer_token) as client:
        body = client.get(f"/api/v1/jobs/{job.id}").json()
        missing = client.get(f"/api/v1/jobs/{uuid.uuid4()}")
        nul = client.get("/api/v1/jobs/%00")
    assert body["id"] == job.id and body["type"] == "noop" and body["params"]["items"] == 2
    assert set(body["progress"]) >= {"processed", "total", "percent", "succeeded", "failed",
                                      "rate_per_second", "eta_seconds"}
    assert_error(missing, 404, "job_not_found")
    assert_error(nul, 404, "job_not_found")


def test_item_errors_are_paginated(module_server: Any, tmp_path: Any) -> None:
    from api_helpers import manager_for

    manager = manager_for(module_server, tmp_path)
    job = create_noop(manager, items=20, error_every=3)  # items 2, 5, 8, 11, 14, 17
    manager.engine.dispose()
    with module_server.client() as client:
        done = wait_status(client, job.id, "completed")
        first = client.get(f"/api/v1/jobs/{job.id}/errors", params={"limit": 4}).json()
        second = client.get(f"/api/v1/jobs/{job.id}/errors", params={"limit": 4, "offset": 4}).json()
        bad = client.get(f"/api/v1/jobs/{job.id}/errors", params={"limit": 0})
        missing = client.get(f"/api/v1/jobs/{uuid.uuid4()}/errors")
    assert done["error_count"] == 6 and len(done["recent_errors"]) == 5
    assert first["total"] == second["total"] == 6
    indexes = [e["item_index"] for e in first["errors"] + second["errors"]]
    assert indexes == [2, 5, 8, 11, 14, 17]
    assert first["errors"][0]["code"] == "noop_error" and first["errors"][0]["item"] == "item 2"
    assert_error(bad, 422)
    assert_error(missing, 404, "job_not_found")
