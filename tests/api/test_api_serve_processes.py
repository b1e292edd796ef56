"""``cocoa serve`` with several processes, and the per-process token cache."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from api_helpers import assert_error, create_noop, manager_for, wait_status
from tests.conftest import start_live_server, stop_live_server

from cocoa import auth
from cocoa.auth import Role, TokenCache, User
from cocoa.db.engine import make_engine


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def test_serve_with_two_processes_shares_the_port_and_runs_jobs(sqlite_url: str, tmp_path: Path) -> None:
    server = start_live_server(sqlite_url, tmp_path, COCOA_WEB_PROCESSES="2")
    try:
        deadline = time.monotonic() + 30
        while len(_children(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # poll with a deadline: uvicorn spawns its processes after binding
        assert len(_children(server.process.pid)) >= 2, "expected two server processes"
        manager = manager_for(server, tmp_path)
        job = create_noop(manager, items=30, batch_size=10)
        with server.client() as client:
            assert wait_status(client, job.id, "completed")["progress"]["processed"] == 30
            # Both processes answer with the same data and the same auth rules.
            for _ in range(20):
                assert client.get(f"/api/v1/jobs/{job.id}").json()["status"] == "completed"
        with httpx.Client(base_url=server.url) as anonymous:
            assert_error(anonymous.get(f"/api/v1/jobs/{job.id}"), 401)
        manager.engine.dispose()
    finally:
        stop_live_server(server)
    assert server.process.returncode == 0


ADMIN = User(1, "admin", Role.ADMIN)


def test_token_cache_remembers_a_checked_token_until_its_ttl() -> None:
    cache = TokenCache(ttl_seconds=0.2)
    assert cache.get("cct_a") is None
    cache.put("cct_a", ADMIN)
    assert cache.get("cct_a") == ADMIN
    assert cache.get("cct_b") is None
    deadline = time.monotonic() + 5
    while cache.get("cct_a") is not None:
        assert time.monotonic() < deadline, "the cached token never expired"
        time.sleep(0.02)


def test_token_cache_off_checks_every_request() -> None:
    cache = TokenCache(ttl_seconds=0)
    cache.put("cct_a", ADMIN)
    assert cache.get("cct_a") is None


def test_token_cache_clear_and_size_bound() -> None:
    cache = TokenCache(ttl_seconds=60, max_entries=3)
    for name in "abc":
        cache.put(f"cct_{name}", ADMIN)
    cache.put("cct_d", ADMIN)  # over the bound: the old entries are dropped, never the new one
    assert cache.get("cct_d") == ADMIN and cache.get("cct_a") is None
    cache.clear()
    assert cache.get("cct_d") is None


def test_a_token_revoked_elsewhere_stops_working_within_the_cache_time(sqlite_url: str, tmp_path: Path) -> None:
    """Revoked straight in the database, as ``cocoa token revoke`` does: the
    server's cached check lapses and the next request is refused."""
    server = start_live_server(sqlite_url, tmp_path, COCOA_TOKEN_CACHE_SECONDS="0.5")
    try:
        engine = make_engine(sqlite_url)
        token, info = auth.create_token(engine, "admin", "short-lived")
        with server.client(token) as client:
            assert client.get("/api/v1/auth/me").status_code == 200  # checked, now cached
            assert auth.revoke_token(engine, info["id"])
            deadline = time.monotonic() + 10
            while client.get("/api/v1/auth/me").status_code != 401:
                assert time.monotonic() < deadline, "a revoked token kept working"
                time.sleep(0.05)  # poll with a deadline
        engine.dispose()
    finally:
        stop_live_server(server)
