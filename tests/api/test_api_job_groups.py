"""Job groups and compressed voter uploads over HTTP, on both backends: a
zipped file over the per-job limit becomes one group whose object, errors,
event stream and listing show the whole import; control and retry act on
the group; over the group limit is a 422."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import assert_error, root, wait_status
from test_api_events import read_events

from cocoa.samples.voters import generate

VOTERS = "/api/v1/voters/import"
ROWS = 130
GROUP_ENV = {"COCOA_MAX_ITEMS_PER_JOB": "40", "COCOA_MAX_ITEMS_PER_GROUP": "200",
             "COCOA_VOTER_BATCH_SIZE": "10"}


@pytest.fixture
def group_server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    server = root.start_live_server(db_url, tmp_path, **GROUP_ENV)
    yield server
    root.stop_live_server(server)


@pytest.fixture
def idle_group_server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    server = root.start_live_server(db_url, tmp_path, worker=False, **GROUP_ENV)
    yield server
    root.stop_live_server(server)


def zipped(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return out.getvalue()


def upload(client: httpx.Client, data: bytes, filename: str, **fields: str) -> httpx.Response:
    return client.post(VOTERS, files={"file": (filename, data, "application/zip")},
                       data={"format": "auto", "mode": "full", **fields})


def test_zipped_file_over_the_limit_runs_as_a_group(group_server: Any) -> None:
    generated = generate("nc_statewide", ROWS, mess_rate=0.05, seed=3)
    with group_server.client() as admin, group_server.client(group_server.viewer_token) as viewer:
        response = upload(admin, zipped("ncvoter92.txt", generated.data), "ncvoter92.zip")
        assert response.status_code == 202, response.text
        group_id = response.json()["job_id"]
        events = read_events(viewer, group_id)  # the stream follows the group to its end
        assert events[-1][1]["status"] == "completed" and events[-1][1]["kind"] == "group"
        processed = [data["progress"]["processed"] for name, data in events if name == "job"]
        assert processed == sorted(processed) and processed[-1] == ROWS
        group = wait_status(viewer, group_id, "completed")
        assert group["progress"]["percent"] == 100 and group["progress"]["total"] == ROWS
        assert group["input"]["compressed"] == "zip" and group["input"]["filename"] == "ncvoter92.zip"
        assert group["input"]["bytes"] == len(generated.data)  # stored expanded
        children = group["children"]
        assert [c["item_range"] for c in children] == [[1, 40], [41, 80], [81, 120], [121, 130]]
        assert all(c["status"] == "completed" for c in children)
        assert group["error_count"] == sum(c["error_count"] for c in children)
        errors = viewer.get(f"/api/v1/jobs/{group_id}/errors", params={"limit": 200}).json()
        assert errors["total"] == group["error_count"] == len(errors["errors"])  # warnings included
        assert {e["item"] for e in errors["errors"] if e["severity"] == "error"} == {
            f"row {r}" for r in generated.errors}
        child = viewer.get(f"/api/v1/jobs/{children[2]['id']}").json()
        assert child["parent_id"] == group_id and child["kind"] == "job" and child["item_range"] == [81, 120]
        assert child["input"] == group["input"]  # a child shows which file it is a part of
        assert all(c["input"] == group["input"] for c in children)
        listed = viewer.get("/api/v1/jobs").json()
        assert [j["id"] for j in listed["jobs"]] == [group_id]


def test_gzip_upload_and_the_group_limit(group_server: Any) -> None:
    with group_server.client() as admin:
        small = generate("nc_statewide", 30, mess_rate=0.0, seed=4).data
        accepted = upload(admin, gzip.compress(small), "ncvoter.txt.gz")
        assert accepted.status_code == 202, accepted.text
        job = wait_status(admin, accepted.json()["job_id"], "completed")
        assert job["kind"] == "job" and job["input"]["compressed"] == "gzip" and job["children"] == []
        big = generate("nc_statewide", 201, mess_rate=0.0, seed=5).data
        refused = assert_error(upload(admin, zipped("all.txt", big), "all.zip"), 422, "too_many_items")
        assert "201" in refused["message"] and "COCOA_MAX_ITEMS_PER_GROUP" in refused["message"]


def test_control_and_retry_act_on_the_group(idle_group_server: Any) -> None:
    data = generate("nc_statewide", ROWS, mess_rate=0.0, seed=6).data
    with idle_group_server.client() as admin, idle_group_server.client(idle_group_server.viewer_token) as viewer:
        group_id = upload(admin, data, "voters.txt").json()["job_id"]
        assert_error(viewer.post(f"/api/v1/jobs/{group_id}/pause"), 403)
        paused = admin.post(f"/api/v1/jobs/{group_id}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        assert {c["status"] for c in paused.json()["children"]} == {"paused"}
        assert_error(admin.post(f"/api/v1/jobs/{group_id}/pause"), 409)
        cancelled = admin.post(f"/api/v1/jobs/{group_id}/cancel").json()
        assert cancelled["status"] == "cancelled" and {c["status"] for c in cancelled["children"]} == {"cancelled"}
        retried = admin.post(f"/api/v1/jobs/{group_id}/retry")
        assert retried.status_code == 202, retried.text
        again = retried.json()["job"]
        assert again["kind"] == "group" and again["retry_of"] == group_id
        assert [c["item_range"] for c in again["children"]] == [[1, 40], [41, 80], [81, 120], [121, 130]]


def test_cli_watch_follows_the_group(group_server: Any, tmp_path: Path) -> None:
    from test_cli_remote import remote
    from tests.unit.cli_helpers import newcomer

    data = generate("nc_statewide", ROWS, mess_rate=0.0, seed=7).data
    with group_server.client() as admin:
        group_id = upload(admin, zipped("ncvoter10.txt", data), "ncvoter10.zip").json()["job_id"]
    run = remote(newcomer(tmp_path), group_server, "jobs", "watch", group_id[:8])
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Job {group_id} completed" in run.stdout and "group, part" in run.stdout
    assert run.stdout.count('"status": "completed"') == 4  # every child, listed at the end


def test_cli_imports_a_zipped_file_over_the_limit_as_a_group(group_server: Any, tmp_path: Path) -> None:
    """Item 1 from the command line, as a user would: ``cocoa import voters
    ncvoter10.zip --watch`` against the server, one group over the file."""
    from test_cli_remote import remote
    from tests.unit.cli_helpers import newcomer

    gen = generate("nc_statewide", ROWS, mess_rate=0.0, seed=8)
    path = tmp_path / "ncvoter10.zip"
    path.write_bytes(zipped("ncvoter10.txt", gen.data))
    run = remote(newcomer(tmp_path), group_server, "import", "voters", str(path), "--watch")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "a group of 4 jobs over 130 items" in run.stdout
    with group_server.client() as admin:
        listed = admin.get("/api/v1/jobs", params={"type": "import_voters", "limit": 5}).json()["jobs"]
        group = next(job for job in listed if job.get("kind") == "group")
        assert group["status"] == "completed" and group["progress"]["succeeded"] == gen.rows
        assert group["input"]["filename"] == "ncvoter10.zip" and group["input"]["compressed"] == "zip"
