"""Hostile logins, cookies and tokens (issue 14, items 3, 4 and 9).

Against a real server on both backends, each of these must be a 4xx that
says what is wrong (never a 500, never a login):

* a guesser rotating ``X-Forwarded-For`` to look like many clients (the
  header is only believed from ``COCOA_FORWARDED_ALLOW_IPS``);
* user names built to confuse: NUL, over-long, control and invisible
  characters, other cases and Unicode forms of a real name;
* session cookies that are garbage, tampered, or correctly signed but
  carrying nonsense where the session id belongs;
* API token expiries that are absurd, and bearer tokens that are huge or odd.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import itsdangerous
import pytest
import sqlalchemy as sa
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)
from hostile_helpers import Database

from cocoa import auth
from cocoa.db.engine import make_engine

ADDRESS_LIMIT = 6


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir = tmp_path_factory.mktemp("hostile_auth")
    with Database(request.param, data_dir) as url:
        live = root.start_live_server(url, data_dir, worker=False, COCOA_LOGIN_ADDRESS_FAILURES=str(ADDRESS_LIMIT),
                                      COCOA_LOGIN_DELAY_SECONDS="120")
        try:
            yield live
        finally:
            root.stop_live_server(live)


@pytest.fixture(autouse=True)
def fresh_counters(server: Any) -> None:
    engine = make_engine(server.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM login_failures"))
    finally:
        engine.dispose()


def login(server: Any, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        return anonymous.post("/api/v1/auth/tokens", json=body, headers=headers)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    return error


def test_a_forged_forwarded_for_does_not_reset_the_address_count(server: Any) -> None:
    for i in range(ADDRESS_LIMIT):
        response = login(server, {"username": f"guess-{i}", "password": "guess-password"},
                         {"X-Forwarded-For": f"203.0.113.{i}", "Forwarded": f"for=198.51.100.{i}"})
        assert response.status_code == 401
    refused = login(server, {"username": "admin", "password": "admin-password"},
                    {"X-Forwarded-For": "192.0.2.200"})
    assert "for your address" in error_of(refused, 429)["message"]


@pytest.mark.parametrize("username", [
    "admin\x00", "a" * 129, "", "\x00" * 50,
])
def test_malformed_user_names_are_422(server: Any, username: str) -> None:
    error = error_of(login(server, {"username": username, "password": "whatever-password"}), 422)
    assert error["code"] == "validation_error"


@pytest.mark.parametrize("username", [
    "admin\u200b", "adm\u202eni", "ad\tmin", "ad\nmin", "   ", "Ａｄｍｉｎ\u0301", "💥" * 32, "ß" * 128, "ﬃ" * 128,
])
def test_look_alike_or_odd_names_get_no_one_in_and_no_500(server: Any, username: str) -> None:
    error = error_of(login(server, {"username": username, "password": "admin-password"}), 401)
    assert error["code"] == "invalid_credentials"


@pytest.mark.parametrize("username", ["ADMIN", "Admin", " admin ", "Ａｄｍｉｎ"])
def test_other_spellings_of_a_name_are_that_user(server: Any, username: str) -> None:
    """The same user, deliberately (NFKC + casefold); a guesser gains nothing
    from them, since the throttle counts them as one name too."""
    created = login(server, {"username": username, "password": "admin-password", "name": "spelling"})
    assert created.status_code == 201 and created.json()["username"] == "admin"


def _signed(server: Any, payload: Any) -> str:
    secret = (server.log_path.parent / "session_secret").read_text().strip()
    data = base64.b64encode(json.dumps(payload).encode())
    return itsdangerous.TimestampSigner(secret).sign(data).decode()


@pytest.mark.parametrize("cookie", [
    "garbage", "a" * 4000, "e30=.bad.signature", "%00%ff", "null",
])
def test_garbage_session_cookies_are_no_session(server: Any, cookie: str) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.get("/api/v1/auth/me", headers={"Cookie": f"cocoa_session={cookie}"})
    assert error_of(response, 401)["code"] == "missing_token"


@pytest.mark.parametrize("session", [
    {"sid": 12345, "user": {"id": 1, "username": "admin", "role": "admin"}},
    {"sid": ["a", "b"], "user": {"id": 1, "username": "admin", "role": "admin"}},
    {"sid": "x" * 100_000, "user": {"id": 1, "username": "admin", "role": "admin"}},
    {"sid": "\x00", "user": "admin"},
    {"user": {"id": "1 OR 1=1", "username": "admin", "role": "root"}},
])
def test_signed_cookies_with_nonsense_inside_are_no_session(server: Any, session: Any) -> None:
    """Even with the server's own signature (a leaked secret, or a cookie
    from another version), only a session id the server issued counts."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        cookie = {"Cookie": f"cocoa_session={_signed(server, session)}"}
        assert error_of(client.get("/api/v1/auth/me", headers=cookie), 401)["code"] == "missing_token"
        page = client.get("/jobs", headers=cookie)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


@pytest.mark.parametrize("extra", [
    {"expires_in_days": 10**20}, {"expires_in_days": -1}, {"expires_in_days": "soon"},
    {"expires_in_days": 3651}, {"expires_in_days": 1.5}, {"expires_at": "9999-12-31T23:59:59Z"},
    {"expires_at": "not-a-date"}, {"expires_at": 1e30}, {"expires_at": "2026-02-30T00:00:00Z"},
    {"expires_at": "0001-01-01T00:00:00+14:00"}, {"expires_at": None, "expires_in_days": 0},
])
def test_absurd_token_expiries_are_422(server: Any, extra: dict[str, Any]) -> None:
    response = login(server, {"username": "admin", "password": "admin-password", **extra})
    assert error_of(response, 422)["code"] == "validation_error"


@pytest.mark.parametrize("token", [
    "cct_" + "A" * 20_000, "cct_\u00e9\u00e9", "cct_", "cct_' OR 1=1 --", "Bearer cct_x",
])
def test_odd_bearer_tokens_are_401(server: Any, token: str) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        try:
            response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        except UnicodeEncodeError:  # httpx will not send a non-ASCII header; send the bytes
            response = client.get("/api/v1/auth/me",
                                  headers={b"Authorization": f"Bearer {token}".encode()})
    assert error_of(response, 401)["code"] == "invalid_token"


def test_the_signing_above_is_the_servers_own(server: Any) -> None:
    """The control for the cookie tests: the same signing with a session id
    the server did issue is a session, so their refusals are about what is
    inside, not a wrong signature."""
    engine = make_engine(server.db_url)
    try:
        session_id = auth.create_session(engine, 1)
    finally:
        engine.dispose()
    cookie = _signed(server, {"sid": session_id, "user": {"id": 1, "username": "admin", "role": "admin"}})
    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.get("/api/v1/auth/me", headers={"Cookie": f"cocoa_session={cookie}"})
    assert response.status_code == 200 and response.json()["username"] == "admin"
