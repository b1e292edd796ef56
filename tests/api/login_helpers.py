"""Helpers for the login, session and token tests (imported as ``login_helpers``):
logging in over the API and the web form, the session cookie, restarting a
live server in place, and a process's peak memory."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)

from cocoa.db.engine import make_engine

module_database = root.module_database


def api_login(url: str, username: str, password: str, **extra: Any) -> httpx.Response:
    """POST /api/v1/auth/tokens from a fresh client (no cookies, no token)."""
    with httpx.Client(base_url=url, timeout=60) as anonymous:
        return anonymous.post("/api/v1/auth/tokens", json={"username": username, "password": password, **extra})


def page_csrf(client: httpx.Client, path: str = "/login") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text[:500]
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', response.text)
    assert found, "no csrf-token meta tag on the page"
    return found.group(1)


def web_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """The login form as a browser sends it (CSRF token from the login page)."""
    token = page_csrf(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": "/jobs"})


def web_client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, follow_redirects=False)


@contextmanager
def logged_in(url: str, username: str = "admin", password: str = "admin-password") -> Iterator[httpx.Client]:
    """A client holding a web session of ``username``."""
    with web_client(url) as client:
        response = web_login(client, username, password)
        assert response.status_code == 303, response.text[:500]
        yield client


def me_with_cookie(url: str, cookie_name: str, cookie_value: str) -> httpx.Response:
    """GET /api/v1/auth/me sending exactly this cookie, as a thief with a copy would."""
    with httpx.Client(base_url=url, timeout=60) as thief:
        return thief.get("/api/v1/auth/me", headers={"Cookie": f"{cookie_name}={cookie_value}"})


def restart(server: root.LiveServer, **env: str) -> root.LiveServer:
    """Stop the server and start ``cocoa serve`` again on the same port,
    database and data dir (so the same session secret), with no worker."""
    root.stop_live_server(server)
    data_dir = server.log_path.parent
    port = server.url.rsplit(":", 1)[1]
    log_path = data_dir / f"serve-{port}-restarted.log"
    args = [sys.executable, "-m", "cocoa.cli.main", "serve", "--host", "127.0.0.1", "--port", port,
            "--no-worker"]
    process = subprocess.Popen(args, env=root.cocoa_env(server.db_url, data_dir, **env), cwd=root.REPO,
                               stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cocoa serve exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return replace(server, process=process, log_path=log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # poll with a deadline
    process.kill()
    raise RuntimeError(f"cocoa serve did not start again:\n{log_path.read_text()}")


def execute(db_url: str, sql: str, **params: Any) -> Any:
    """Run one statement on the server's database (to look at or age rows)."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return result.all() if result.returns_rows else result.rowcount
    finally:
        engine.dispose()


def peak_rss_kib(pid: int) -> int:
    """The process's resident-memory high-water mark (``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")
