"""Login throttling and the bound on concurrent password checks (issue 14, item 3).

The finding: 30 wrong passwords in 5 s got 30 x 401, and 10 parallel
attempts took the server from 154 MB to 745 MB (Argon2 at 64 MiB each).
Real servers over loopback; the throttle's counters are in the database, so
on both backends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import assert_error, root
from login_helpers import api_login, execute, module_database, peak_rss_kib, web_client, web_login

MIB = 1024  # KiB
DELAY = 60  # the test servers' first wait: far longer than any burst below takes


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir = tmp_path_factory.mktemp("throttle")
    with module_database(request.param, data_dir) as url:
        live = root.start_live_server(url, data_dir, worker=False, COCOA_LOGIN_DELAY_SECONDS=str(DELAY),
                                      COCOA_LOGIN_ADDRESS_FAILURES="12")
        try:
            yield live
        finally:
            root.stop_live_server(live)


@pytest.fixture(autouse=True)
def fresh_counters(request: pytest.FixtureRequest) -> None:
    """Each test starts with no failures recorded (the server is shared)."""
    if "server" in request.fixturenames:
        execute(request.getfixturevalue("server").db_url, "DELETE FROM login_failures")


def test_thirty_quick_wrong_passwords_are_throttled_after_five(server: Any) -> None:
    statuses = []
    for _ in range(30):
        response = api_login(server.url, "admin", "not-the-password")
        statuses.append(response.status_code)
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 25, statuses
    throttled = api_login(server.url, "admin", "admin-password")  # the right one, during the wait
    error = assert_error(throttled, 429, "too_many_failed_logins")
    retry_after = int(throttled.headers["Retry-After"])
    assert 0 < retry_after <= DELAY
    assert error["message"] == f"Too many failed logins for this account; try again in {retry_after} s."
    # The per-name throttle is about this name only: another user logs in.
    assert api_login(server.url, "viewer", "viewer-password").status_code == 201
    # Any spelling of the name is the same account, throttled alike.
    assert_error(api_login(server.url, "ADMIN", "admin-password"), 429, "too_many_failed_logins")


def test_the_wait_doubles_and_a_success_forgets_the_failures(server: Any) -> None:
    for _ in range(5):
        assert api_login(server.url, "viewer", "wrong-password").status_code == 401
    assert int(api_login(server.url, "viewer", "wrong-password").headers["Retry-After"]) > DELAY // 2
    _wait_is_over(server, "user:viewer")
    assert api_login(server.url, "viewer", "wrong-password").status_code == 401  # a sixth failure
    second_wait = int(api_login(server.url, "viewer", "wrong-password").headers["Retry-After"])
    assert DELAY < second_wait <= 2 * DELAY  # doubled
    _wait_is_over(server, "user:viewer")
    assert api_login(server.url, "viewer", "viewer-password").status_code == 201
    assert execute(server.db_url, "SELECT failures FROM login_failures WHERE key = 'user:viewer'") == []
    assert api_login(server.url, "viewer", "wrong-password").status_code == 401  # counting from one again


def _wait_is_over(server: Any, key: str) -> None:
    """Let the wait pass without waiting: move its end into the past (the
    count of failures stays, which is what decides the next wait)."""
    aged = execute(server.db_url, "UPDATE login_failures SET blocked_until = :past WHERE key = :key",
                   past="2000-01-01 00:00:00", key=key)
    assert aged == 1


def test_many_names_from_one_address_are_throttled_by_address(server: Any) -> None:
    """A guesser trying one password on many names (12 on this server)."""
    for i in range(12):
        assert api_login(server.url, f"nobody-{i}", "guess-password").status_code == 401
    response = api_login(server.url, "viewer", "viewer-password")
    error = assert_error(response, 429, "too_many_failed_logins")
    retry_after = int(response.headers["Retry-After"])
    assert error["message"] == f"Too many failed logins for your address; try again in {retry_after} s."


def test_names_that_do_not_exist_are_throttled_like_real_ones(server: Any) -> None:
    """Otherwise the throttle itself would tell which names exist."""
    for name in ("admin", "no-such-user"):
        responses = [api_login(server.url, name, "wrong-password") for _ in range(6)]
        assert [r.status_code for r in responses] == [401] * 5 + [429], name


def test_web_login_shares_the_throttle(server: Any) -> None:
    for _ in range(5):
        assert api_login(server.url, "viewer", "wrong-password").status_code == 401
    with web_client(server.url) as client:
        page = web_login(client, "viewer", "viewer-password")
    assert page.status_code == 429, page.text[:300]
    assert int(page.headers["Retry-After"]) > 0
    assert "Too many failed logins for this account; try again in" in page.text


def _parallel_logins(url: str, count: int) -> list[httpx.Response]:
    """``count`` wrong-password logins released at once, each for its own
    made-up name (so the per-name throttle never steps in)."""
    clients = [httpx.Client(base_url=url, timeout=60) for _ in range(count)]
    for client in clients:
        client.get("/healthz")  # connect first, so the logins start together
    barrier = threading.Barrier(count)
    responses: list[httpx.Response] = []

    def attempt(i: int) -> None:
        barrier.wait()
        responses.append(clients[i].post("/api/v1/auth/tokens",
                                         json={"username": f"parallel-{i}", "password": "guess-password"}))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for client in clients:
        client.close()
    assert len(responses) == count
    return responses


def test_parallel_logins_use_at_most_the_slots_memory(sqlite_url: str, tmp_path: Path) -> None:
    """Ten parallel password checks: the server's peak memory grows by about
    two Argon2 checks' worth (the default two slots), not ten. Measured on
    the real server process as its resident-memory high-water mark; with
    COCOA_PASSWORD_CHECK_SLOTS=10 the same test sees about 550 MiB."""
    server = root.start_live_server(sqlite_url, tmp_path, worker=False, COCOA_LOGIN_ADDRESS_FAILURES="100")
    try:
        assert api_login(server.url, "admin", "admin-password").status_code == 201  # one check: warm
        before = peak_rss_kib(server.process.pid)
        responses = _parallel_logins(server.url, 10)
        grown = peak_rss_kib(server.process.pid) - before
    finally:
        root.stop_live_server(server)
    assert [r.status_code for r in responses] == [401] * 10
    assert grown < 2 * 64 * MIB + 32 * MIB, f"peak memory grew by {grown // MIB} MiB"


def test_a_login_that_cannot_get_a_slot_in_time_is_503_with_retry_after(sqlite_url: str,
                                                                          tmp_path: Path) -> None:
    server = root.start_live_server(sqlite_url, tmp_path, worker=False, COCOA_PASSWORD_CHECK_SLOTS="1",
                                    COCOA_PASSWORD_CHECK_WAIT_SECONDS="0.001",
                                    COCOA_LOGIN_ADDRESS_FAILURES="100")
    try:
        responses = _parallel_logins(server.url, 8)
    finally:
        root.stop_live_server(server)
    busy = [r for r in responses if r.status_code == 503]
    assert busy and all(r.status_code in (401, 503) for r in responses), [r.status_code for r in responses]
    assert any(r.status_code == 401 for r in responses)  # the slot was used by someone
    error = assert_error(busy[0], 503, "login_busy")
    assert int(busy[0].headers["Retry-After"]) > 0 and "try again in" in error["message"]
