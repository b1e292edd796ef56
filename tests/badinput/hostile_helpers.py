"""Helpers shared by the hostile-input tests (imported as ``hostile_helpers``):
a fresh database per module and a web session with its CSRF token."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)


class Database:
    """A fresh database for a module: a SQLite file, or a PostgreSQL database
    created and dropped like the root ``pg_url`` fixture does per test."""

    def __init__(self, backend: str, data_dir: Path) -> None:
        self.backend = backend
        self.data_dir = data_dir
        self.name = f"cocoa_t_{uuid.uuid4().hex[:12]}"
        self.admin: sa.Engine | None = None

    def __enter__(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.data_dir / 'cocoa.db'}"
        root.require_postgres()
        self.admin = sa.create_engine(root.PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                                      poolclass=sa.pool.NullPool)
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        return str(sa.make_url(root.PG_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False))

    def __exit__(self, *exc: object) -> None:
        if self.admin is not None:
            with self.admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.admin.dispose()


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
