"""Web sessions the server can end (issue 14, item 4).

The finding: a copied session cookie still worked after logout and after a
restart, for the 12 hours the signed cookie lives. Each test copies a cookie
out of a logged-in client and presents it from a fresh one, as a thief
would, against a real server on both backends.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import itsdangerous
import pytest
from api_helpers import assert_error, root, wait_for
from login_helpers import execute, logged_in, me_with_cookie, page_csrf, restart

from cocoa import auth
from cocoa.db.engine import make_engine

COOKIE = "cocoa_session"


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    live = root.start_live_server(db_url, tmp_path, worker=False)
    yield live
    root.stop_live_server(live)


def copied_cookie(client: httpx.Client, name: str = COOKIE) -> str:
    value = client.cookies.get(name)
    assert value, f"no {name} cookie after login"
    return value


def log_out(client: httpx.Client) -> None:
    response = client.post("/logout", data={"csrf_token": page_csrf(client, "/jobs")})
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_a_copied_cookie_is_refused_after_logout(server: Any) -> None:
    with logged_in(server.url) as client:
        stolen = copied_cookie(client)
        assert me_with_cookie(server.url, COOKIE, stolen).json()["username"] == "admin"  # the copy works...
        log_out(client)
    assert_error(me_with_cookie(server.url, COOKIE, stolen), 401)  # ...until the owner logs out
    with httpx.Client(base_url=server.url, timeout=60, cookies={COOKIE: stolen}) as thief:
        page = thief.get("/jobs")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert f"{COOKIE}=null" in page.headers.get("set-cookie", "")  # and the browser is told to drop it
    assert execute(server.db_url, "SELECT count(*) FROM sessions")[0][0] == 0


def test_logout_ends_only_its_own_session(server: Any) -> None:
    with logged_in(server.url) as laptop, logged_in(server.url) as phone:
        log_out(laptop)
        assert phone.get("/api/v1/auth/me").status_code == 200


def test_a_password_change_ends_every_session_of_the_user(server: Any, tmp_path: Path) -> None:
    """Changed from the CLI (another process): the server notices within
    COCOA_TOKEN_CACHE_SECONDS (5 s by default)."""
    engine = make_engine(server.db_url)
    auth.create_user(engine, "carol", "carol-password-1", auth.Role.VIEWER)
    engine.dispose()
    with logged_in(server.url, "carol", "carol-password-1") as one, \
            logged_in(server.url, "carol", "carol-password-1") as two, logged_in(server.url) as admin:
        cookies = [copied_cookie(one), copied_cookie(two)]
        changed = subprocess.run(
            [sys.executable, "-m", "cocoa.cli.main", "user", "password", "Carol", "--password-stdin"],
            input="carol-password-2\n", env=root.cocoa_env(server.db_url, tmp_path), cwd=root.REPO,
            capture_output=True, text=True, timeout=60)
        assert changed.returncode == 0, changed.stderr
        assert "Password of 'carol' changed; 2 web sessions ended." in changed.stdout
        wait_for(lambda: all(_refused(server.url, cookie) for cookie in cookies), 15,
                 "both old sessions to be refused")
        assert admin.get("/api/v1/auth/me").status_code == 200  # other users keep theirs
    with logged_in(server.url, "carol", "carol-password-2") as again:
        assert again.get("/api/v1/auth/me").json()["username"] == "carol"


def test_sessions_survive_a_restart_but_ended_ones_stay_ended(server: Any) -> None:
    with logged_in(server.url) as leaving, logged_in(server.url) as staying:
        ended, live = copied_cookie(leaving), copied_cookie(staying)
        log_out(leaving)
    restarted = restart(server)
    try:
        assert_error(me_with_cookie(restarted.url, COOKIE, ended), 401)
        assert me_with_cookie(restarted.url, COOKIE, live).json()["username"] == "admin"
    finally:
        root.stop_live_server(restarted)
        server.process = restarted.process  # the fixture stops the running one


def test_a_cookie_from_before_revocable_sessions_is_logged_out(server: Any) -> None:
    """A cookie signed with the right secret but carrying no session id (as
    every cookie issued before this change did) no longer counts."""
    secret = (server.log_path.parent / "session_secret").read_text().strip()
    payload = base64.b64encode(json.dumps({"user": {"id": 1, "username": "admin", "role": "admin"}}).encode())
    old_style = itsdangerous.TimestampSigner(secret).sign(payload).decode()
    assert_error(me_with_cookie(server.url, COOKIE, old_style), 401)
    forged_sid = base64.b64encode(json.dumps({"sid": "made-up", "user": {"id": 1, "username": "admin",
                                                                          "role": "admin"}}).encode())
    assert_error(me_with_cookie(server.url, COOKIE, itsdangerous.TimestampSigner(secret).sign(forged_sid)
                                .decode()), 401)


def test_login_with_any_case_of_the_name_is_the_same_user(server: Any) -> None:
    with logged_in(server.url, "ADMIN") as client:
        assert client.get("/api/v1/auth/me").json() == {"id": 1, "username": "admin", "role": "admin"}


def test_secure_cookie_setting_uses_the_host_prefix(sqlite_url: str, tmp_path: Path) -> None:
    """COCOA_COOKIE_SECURE: ``__Host-`` name, Secure, path /, no Domain. (A
    browser would not send it back over plain HTTP; the test sends it by hand.)"""
    server = root.start_live_server(sqlite_url, tmp_path, worker=False, COCOA_COOKIE_SECURE="true")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            page = client.get("/login")
            token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
            assert token, page.text[:300]
            response = client.post("/login", data={"username": "admin", "password": "admin-password",
                                                   "csrf_token": token.group(1), "next": "/jobs"},
                                   headers={"Cookie": "=".join(_cookie(page.headers["set-cookie"])[:2])})
        assert response.status_code == 303, response.text[:300]
        name, value, flags = _cookie(response.headers["set-cookie"])
        assert name == f"__Host-{COOKIE}"
        assert {"secure", "httponly", "path=/", "samesite=lax"} <= flags
        assert not any(flag.startswith("domain") for flag in flags)
        assert me_with_cookie(server.url, f"__Host-{COOKIE}", value).json()["username"] == "admin"
        assert_error(me_with_cookie(server.url, COOKIE, value), 401)  # the unprefixed name means nothing
    finally:
        root.stop_live_server(server)


def _cookie(set_cookie: str) -> tuple[str, str, set[str]]:
    """(name, value, lower-cased flags) of one Set-Cookie header."""
    first, *flags = set_cookie.split(";")
    name, value = first.split("=", 1)
    return name.strip(), value, {flag.strip().lower() for flag in flags}


def _refused(url: str, cookie: str) -> bool:
    return me_with_cookie(url, COOKIE, cookie).status_code == 401
