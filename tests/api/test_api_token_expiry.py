"""API tokens: ``last_used_at``, optional expiry, and a quickstart that does
not mint a new admin token on every run (issue 14, item 9).

The module's servers trust a checked token for 10 minutes
(``COCOA_TOKEN_CACHE_SECONDS=600``), so a test sees the database path only
where it means to, and an expiry the cache ignored would show.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import assert_error, root, wait_for
from login_helpers import api_login, execute, module_database

from cocoa import auth
from cocoa.db.engine import make_engine


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir = tmp_path_factory.mktemp("tokens")
    with module_database(request.param, data_dir) as url:
        live = root.start_live_server(url, data_dir, worker=False, COCOA_TOKEN_CACHE_SECONDS="600")
        try:
            yield live
        finally:
            root.stop_live_server(live)


def listed(server: Any, token_id: int) -> dict[str, Any]:
    with server.client() as admin:
        tokens = admin.get("/api/v1/auth/tokens").json()["tokens"]
    return next(t for t in tokens if t["id"] == token_id)


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def forget_cached_tokens(server: Any) -> None:
    """Revoking any token through the API empties the server's token cache,
    so the next request with each token is checked against the database."""
    with server.client() as admin:
        spare = api_login(server.url, "viewer", "viewer-password", name="spare").json()
        assert admin.delete(f"/api/v1/auth/tokens/{spare['id']}").status_code == 204


def test_last_used_at_is_written_once_a_minute_at_most(server: Any) -> None:
    created = api_login(server.url, "viewer", "viewer-password", name="used").json()
    assert created["last_used_at"] is None and listed(server, created["id"])["last_used_at"] is None
    with server.client(created["token"]) as client:
        assert client.get("/api/v1/auth/me").status_code == 200
    first = wait_for(lambda: listed(server, created["id"])["last_used_at"], 10, "last_used_at to be written")
    assert abs(parse(first) - datetime.now(UTC)) < timedelta(seconds=30)
    forget_cached_tokens(server)
    with server.client(created["token"]) as client:
        for _ in range(3):  # checked against the database again: still no second write within the minute
            assert client.get("/api/v1/auth/me").status_code == 200
    assert listed(server, created["id"])["last_used_at"] == first


def test_a_stale_last_used_at_is_written_again(server: Any) -> None:
    created = api_login(server.url, "viewer", "viewer-password", name="stale").json()
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    execute(server.db_url, "UPDATE api_tokens SET last_used_at = :at WHERE id = :id", at=long_ago,
            id=created["id"])
    with server.client(created["token"]) as client:
        assert client.get("/api/v1/auth/me").status_code == 200
    wait_for(lambda: parse(listed(server, created["id"])["last_used_at"]) > long_ago + timedelta(minutes=4),
             10, "last_used_at to move on")


def test_an_expired_token_is_401_token_expired_even_when_cached(server: Any) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=2)
    created = api_login(server.url, "viewer", "viewer-password", name="brief", expires_at=soon.isoformat())
    assert created.status_code == 201, created.text
    body = created.json()
    assert abs(parse(body["expires_at"]) - soon) < timedelta(seconds=1)
    with server.client(body["token"]) as client:
        assert client.get("/api/v1/auth/me").status_code == 200  # works, and is now cached

        def refused() -> httpx.Response | None:
            response = client.get("/api/v1/auth/me")
            return response if response.status_code == 401 else None

        error = assert_error(wait_for(refused, 15, "the token to expire"), 401, "token_expired")
    assert "expired at" in error["message"] and "cocoa token create" in error["message"]
    assert parse(listed(server, body["id"])["expires_at"]) <= datetime.now(UTC)


def test_expires_in_days_sets_the_expiry(server: Any) -> None:
    body = api_login(server.url, "viewer", "viewer-password", name="month", expires_in_days=30).json()
    expected = datetime.now(UTC) + timedelta(days=30)
    assert abs(parse(body["expires_at"]) - expected) < timedelta(minutes=1)
    assert listed(server, body["id"])["expires_at"] == body["expires_at"]
    forever = api_login(server.url, "viewer", "viewer-password", name="forever").json()
    assert forever["expires_at"] is None


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"expires_in_days": 0}, "greater than or equal to 1"),
    ({"expires_in_days": 30, "expires_at": "2099-01-01T00:00:00Z"}, "not both"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "in the future"),
    ({"expires_at": "2030-01-01T00:00:00"}, "timezone"),
])
def test_bad_expiries_are_422(server: Any, extra: dict[str, Any], fragment: str) -> None:
    error = assert_error(api_login(server.url, "viewer", "viewer-password", **extra), 422, "validation_error")
    assert fragment in error["message"], error["message"]


def test_cli_token_create_with_expiry(server: Any, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "cocoa.cli.main", "token", "create", "Viewer",
                          "--name", "cli-week", "--expires-days", "7"],
                         env=root.cocoa_env(server.db_url, tmp_path), cwd=root.REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip().splitlines()[-1]
    assert "expires" in run.stdout and token.startswith("cct_")
    engine = make_engine(server.db_url)
    try:
        entry = next(t for t in auth.list_tokens(engine, "viewer") if t["name"] == "cli-week")
    finally:
        engine.dispose()
    assert abs(parse(entry["expires_at"]) - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    with server.client(token) as client:
        assert client.get("/api/v1/auth/me").json()["username"] == "viewer"


def test_quickstart_mints_its_token_once(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCOA_")}
    env.update(COCOA_DATA_DIR=str(tmp_path), COCOA_DATABASE_URL=db_url)

    def quickstart() -> str:
        run = subprocess.run([sys.executable, "-m", "cocoa.cli.main", "quickstart", "--no-demo"], env=env,
                             cwd=root.REPO, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        return run.stdout

    first = quickstart()
    assert "API token:  cct_" in first and "expires in 30 days" in first
    again = quickstart()
    assert "API token:  cct_" not in again  # no new secret printed...
    assert "an earlier quickstart made one" in again and "cocoa token create admin" in again
    assert "cocoa user password admin" in again
    assert len(_quickstart_tokens(db_url)) == 1  # ...and none minted
    token_id = _quickstart_tokens(db_url)[0]["id"]
    execute(db_url, "UPDATE api_tokens SET revoked_at = created_at WHERE id = :id", id=token_id)
    assert "API token:  cct_" in quickstart()  # the earlier one no longer works: a new one
    assert len(_quickstart_tokens(db_url)) == 2


def _quickstart_tokens(db_url: str) -> list[dict[str, Any]]:
    engine = make_engine(db_url)
    try:
        tokens = [t for t in auth.list_tokens(engine, "admin") if t["name"] == "quickstart"]
    finally:
        engine.dispose()
    assert all(t["expires_at"] for t in tokens)
    return tokens
