"""Helpers shared by the hostile-input tests (imported as ``hostile_helpers``):
a fresh database per module and a web session with its CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)

Database = root.module_database  # the hostile-input modules' name for it


def page_csrf(client: httpx.Client, path: str = "/login") -> str:
    """The CSRF token a page hands out (and the session cookie that goes with it)."""
    response = client.get(path)
    assert response.status_code == 200, response.text[:500]
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', response.text)
    assert found, "no csrf-token meta tag on the page"
    return found.group(1)


@contextmanager
def web_session(url: str, username: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client logged in through the web login form as ``username`` (the
    live-server users' passwords are ``<name>-password``), and its CSRF token."""
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as client:
        token = page_csrf(client)
        response = client.post("/login", data={"username": username, "password": f"{username}-password",
                                               "csrf_token": token, "next": "/jobs"})
        assert response.status_code == 303, response.text[:500]
        yield client, page_csrf(client, "/jobs")
