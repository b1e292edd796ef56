"""The CLI from anywhere (issue 19, items 4 and 5), against a live server.

The real ``cocoa`` console script runs in a subprocess whose environment has
no database setting at all - only ``COCOA_URL`` and ``COCOA_TOKEN`` (or what
``cocoa login`` stored) - so every command here can only have worked over
HTTP. One server (with its worker) per backend: SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import create_noop, manager_for, root, wait_for, wait_status
from tests.unit.cli_helpers import COCOA, Newcomer, newcomer

from cocoa.samples.sample_set import COUNTY_MAPPING


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample files, written once by the real ``cocoa samples``."""
    user = newcomer(tmp_path_factory.mktemp("samples"))
    run = user.run("samples", "town")
    assert run.returncode == 0, run.stderr
    return user.cwd / "town"


@pytest.fixture
def user(tmp_path: Path) -> Newcomer:
    return newcomer(tmp_path)


def remote(user: Newcomer, server: Any, *args: str, token: str | None = None,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``cocoa ARGS`` with only the server's URL and a token in the environment."""
    env = user.env(COCOA_URL=server.url, COCOA_TOKEN=token or server.admin_token)
    return subprocess.run([user_cocoa(), *args], env=env, cwd=user.cwd, capture_output=True, text=True,
                          timeout=120, input=stdin)


def user_cocoa() -> str:
    return COCOA


def assert_clean_failure(run: subprocess.CompletedProcess[str], code: int, *phrases: str) -> None:
    """Non-zero exit with the given status, one clear message, no traceback."""
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    for phrase in phrases:
        assert phrase in run.stderr, (phrase, run.stderr)


def test_import_watch_list_show_and_errors(module_server: Any, user: Newcomer, town: Path) -> None:
    run = remote(user, module_server, "import", "voters", str(town / "voters.txt"), "--watch")
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = run.stdout.split("Created job ", 1)[1].split(" ", 1)[0]
    with module_server.client() as client:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        errors = client.get(f"/api/v1/jobs/{job_id}/errors", params={"limit": 1000}).json()
    assert job["status"] == "completed" and job["created_by"] == "admin"  # made by the token's user
    assert f"Job {job_id} completed" in run.stdout

    listed = remote(user, module_server, "jobs", "list")
    assert listed.returncode == 0, listed.stderr
    assert job_id[:8] + "…" in listed.stdout

    listed_json = json.loads(remote(user, module_server, "jobs", "list", "--json").stdout)
    assert job_id in [j["id"] for j in listed_json["jobs"]]

    shown = remote(user, module_server, "jobs", "show", job_id[:8])  # a prefix, as people type it
    assert shown.returncode == 0, shown.stderr
    assert f"Job       {job_id}" in shown.stdout
    assert "Status    completed" in shown.stdout
    assert "File      voters.txt" in shown.stdout
    processed = job["progress"]["processed"]
    assert f"{processed:,}/{processed:,} (100.0%)" in shown.stdout
    assert "History" in shown.stdout and "created" in shown.stdout

    as_json = remote(user, module_server, "jobs", "show", job_id[:6], "--json")
    assert json.loads(as_json.stdout)["id"] == job_id

    exported = remote(user, module_server, "jobs", "errors", job_id[:10], "--csv")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert errors["total"] > 0, "the sample voter file has known problems"
    assert len(rows) == errors["total"]
    assert [r["code"] for r in rows] == [e["code"] for e in errors["errors"]]

    table = remote(user, module_server, "jobs", "errors", job_id[:8])
    assert table.returncode == 0 and f"{errors['total']} item errors" in table.stdout


def test_watch_follows_the_event_stream(module_server: Any, user: Newcomer, tmp_path: Path) -> None:
    manager = manager_for(module_server, tmp_path)
    try:
        job = create_noop(manager, items=12, delay_ms=40, batch_size=3)
    finally:
        manager.engine.dispose()
    run = remote(user, module_server, "jobs", "watch", job.id[:8])
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Job {job.id} completed" in run.stdout
    # the server saw the SSE request: the watch did not poll GET /jobs/{id}
    log = module_server.log_path.read_text()
    assert f"/api/v1/jobs/{job.id}/events" in log


def test_cancel_as_admin_and_as_viewer(module_server: Any, user: Newcomer, tmp_path: Path) -> None:
    manager = manager_for(module_server, tmp_path)
    try:
        job = create_noop(manager, items=2000, delay_ms=20, batch_size=5)  # runs for ~40 s
    finally:
        manager.engine.dispose()
    refused = remote(user, module_server, "jobs", "cancel", job.id, token=module_server.viewer_token)
    assert_clean_failure(refused, 7, "Not allowed", "admin")
    with module_server.client() as client:
        assert client.get(f"/api/v1/jobs/{job.id}").json()["status"] in ("pending", "processing")
        done = remote(user, module_server, "jobs", "cancel", job.id[:8])
        assert done.returncode == 0, done.stderr
        assert f"Job {job.id} is" in done.stdout
        wait_status(client, job.id, "cancelled")
        again = remote(user, module_server, "jobs", "cancel", job.id[:8])
        assert_clean_failure(again, 5)


def test_geocode_and_parcels_start_jobs_remotely(module_server: Any, user: Newcomer, town: Path) -> None:
    wrong = remote(user, module_server, "import", "parcels", str(town / "county.geojson"), "--mapping",
                   json.dumps({"apn_field": "APN", "address_field": "SITUS"}))
    assert_clean_failure(wrong, 6, "columns the file does not have")  # the server's 422, as one line
    run = remote(user, module_server, "import", "parcels", str(town / "county.geojson"), "--mapping",
                 json.dumps(COUNTY_MAPPING))
    assert run.returncode == 0, run.stderr
    geocode = remote(user, module_server, "geocode", "--limit", "5")
    assert geocode.returncode == 0, geocode.stderr
    job_id = geocode.stdout.split("Created job ", 1)[1].split(" ", 1)[0]
    with module_server.client() as client:
        assert client.get(f"/api/v1/jobs/{job_id}").json()["type"] == "geocode_households"


def test_unknown_and_short_ids_are_clear(module_server: Any, user: Newcomer) -> None:
    assert_clean_failure(remote(user, module_server, "jobs", "show", "0123456789ab"), 4, "0123456789ab")
    assert_clean_failure(remote(user, module_server, "jobs", "show", "abc"), 4, "6")


def test_wrong_url_is_a_clear_failure(user: Newcomer) -> None:
    dead = f"http://127.0.0.1:{root.free_port()}"  # nothing listens there
    run = subprocess.run([user_cocoa(), "jobs", "list"], env=user.env(COCOA_URL=dead, COCOA_TOKEN="cct_x"),
                         cwd=user.cwd, capture_output=True, text=True, timeout=60)
    assert_clean_failure(run, 2, "Cannot reach the Cocoa server", dead)
    bad = subprocess.run([user_cocoa(), "jobs", "list", "--url", "127.0.0.1:8000", "--token", "x"],
                         env=user.env(), cwd=user.cwd, capture_output=True, text=True, timeout=60)
    assert_clean_failure(bad, 2, "http://")


def test_a_url_that_is_not_a_cocoa_server(user: Newcomer) -> None:
    """Some other web server (here Python's own) answers 404 pages, not the API."""
    port = root.free_port()
    other = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                             cwd=user.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url), what="the other web server to listen")
        run = subprocess.run([user_cocoa(), "jobs", "show", "df5c1adb"], env=user.env(COCOA_URL=url,
                             COCOA_TOKEN="cct_x"), cwd=user.cwd, capture_output=True, text=True, timeout=60)
        assert_clean_failure(run, 2, "HTTP 404", "base URL")
    finally:
        other.terminate()
        other.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return False
    return True


def test_revoked_token_is_a_clear_failure(module_server: Any, user: Newcomer) -> None:
    with httpx.Client(base_url=module_server.url, timeout=30) as client:
        made = client.post("/api/v1/auth/tokens", json={"username": "viewer", "password": "viewer-password",
                                                         "name": "to-revoke"}).json()
    assert remote(user, module_server, "jobs", "list", token=made["token"]).returncode == 0
    with module_server.client() as client:
        assert client.delete(f"/api/v1/auth/tokens/{made['id']}").status_code == 204
    run = remote(user, module_server, "jobs", "list", token=made["token"])
    assert_clean_failure(run, 7, "refused the API token", "cocoa login")


def test_login_stores_a_private_credentials_file(module_server: Any, user: Newcomer) -> None:
    env = user.env()
    run = subprocess.run([user_cocoa(), "login", module_server.url + "/", "--username", "viewer",
                          "--password-stdin"], env=env, cwd=user.cwd, input="viewer-password\n",
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    path = user.home / ".config" / "cocoa" / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert stored["url"] == module_server.url and stored["username"] == "viewer"
    with httpx.Client(base_url=module_server.url, timeout=30,
                      headers={"Authorization": f"Bearer {stored['token']}"}) as client:
        assert client.get("/api/v1/auth/me").json()["username"] == "viewer"

    # later commands use it with nothing in the environment
    listed = subprocess.run([user_cocoa(), "jobs", "list", "--json"], env=env, cwd=user.cwd,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "jobs" in json.loads(listed.stdout)

    os.chmod(path, 0o644)  # others could read the token now: refuse it
    leaked = subprocess.run([user_cocoa(), "jobs", "list"], env=env, cwd=user.cwd,
                            capture_output=True, text=True, timeout=60)
    assert_clean_failure(leaked, 7, "readable by other users")


def test_login_with_a_wrong_password_stores_nothing(module_server: Any, user: Newcomer) -> None:
    run = subprocess.run([user_cocoa(), "login", module_server.url, "--username", "viewer",
                          "--password-stdin"], env=user.env(), cwd=user.cwd, input="wrong\n",
                         capture_output=True, text=True, timeout=60)
    assert_clean_failure(run, 7, "Login refused")
    assert not (user.home / ".config" / "cocoa" / "credentials").exists()


def test_ambiguous_prefix_names_the_jobs(module_server: Any, user: Newcomer, tmp_path: Path) -> None:
    """Two jobs whose ids share 8 characters: copies of a finished job's row
    under chosen ids (random ids share a prefix only among thousands)."""
    import uuid

    import sqlalchemy as sa

    from cocoa.db.tables import jobs

    shared = uuid.uuid4().hex[:8]
    ids = [shared + str(uuid.uuid4())[8:] for _ in range(2)]
    manager = manager_for(module_server, tmp_path)
    try:
        job = create_noop(manager, items=1)
        wait_for(lambda: manager.get(job.id).is_terminal, what="the noop job to finish")
        with manager.engine.begin() as conn:
            row = dict(conn.execute(sa.select(jobs).where(jobs.c.id == job.id)).mappings().one())
            for new_id in ids:
                conn.execute(jobs.insert().values({**row, "id": new_id}))
    finally:
        manager.engine.dispose()
    run = remote(user, module_server, "jobs", "show", shared, "--json")
    assert_clean_failure(run, 4, ids[0], ids[1])
    shown = remote(user, module_server, "jobs", "show", ids[1][:12], "--json")
    assert json.loads(shown.stdout)["id"] == ids[1]
