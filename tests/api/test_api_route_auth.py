"""Every route of the real app refuses anonymous and wrongly-authenticated callers.

The routes are enumerated from ``create_app()`` itself, so a route added
later without an auth dependency fails this test instead of shipping open.
Requests go over real HTTP to ``cocoa serve``.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import assert_error
from fastapi import routing as fastapi_routing

from cocoa.api.app import create_app
from cocoa.config import Settings

PUBLIC = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/openapi.json"), ("GET", "/docs"),
    ("GET", "/docs/assets/{name}"), ("GET", "/redoc"), ("POST", "/api/v1/auth/tokens"),
}
# A viewer may manage its own tokens; everything else that writes needs admin.
VIEWER_MAY_WRITE = {("POST", "/api/v1/auth/tokens"), ("DELETE", "/api/v1/auth/tokens/{token_id}")}
WEB_REFUSALS = {303, 307, 401, 403}  # pages send the browser to the login page
DESIGN_ENDPOINTS = {
    ("GET", "/api/v1/jobs"), ("GET", "/api/v1/jobs/{job_id}"), ("GET", "/api/v1/jobs/{job_id}/errors"),
    ("GET", "/api/v1/jobs/{job_id}/events"), ("POST", "/api/v1/jobs/{job_id}/cancel"),
    ("POST", "/api/v1/jobs/{job_id}/pause"), ("POST", "/api/v1/jobs/{job_id}/resume"),
    ("POST", "/api/v1/jobs/{job_id}/retry"), ("POST", "/api/v1/voters/import"),
    ("GET", "/api/v1/voters/import/formats"), ("POST", "/api/v1/gis/parcels/import"),
    ("POST", "/api/v1/jobs/geocoding"), ("GET", "/api/v1/auth/tokens"),
    ("DELETE", "/api/v1/auth/tokens/{token_id}"), ("GET", "/api/v1/auth/me"), ("GET", "/metrics"),
    # Browsing what jobs produced (issue 20): viewer-readable, no writes.
    ("GET", "/api/v1/households"), ("GET", "/api/v1/households/{household_id}"), ("GET", "/api/v1/voters"),
    ("GET", "/api/v1/voters/{voter_id}"), ("GET", "/api/v1/households.geojson"), ("GET", "/api/v1/parcels.geojson"),
    ("GET", "/api/v1/jobs/{job_id}/results"), ("GET", "/api/v1/jobs/{job_id}/results.csv"),
    # Workers and job history (issue 19): viewer-readable.
    ("GET", "/api/v1/workers"), ("GET", "/api/v1/jobs/{job_id}/history"),
    # Finding and acting on many jobs (issue 19): admin-only bulk actions.
    ("POST", "/api/v1/jobs/bulk/cancel"), ("POST", "/api/v1/jobs/bulk/retry"),
    *PUBLIC,
}


def all_routes(tmp_path: Path) -> list[tuple[str, str]]:
    """(method, path template) of every route, API and web, HEAD excluded."""
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", data_dir=tmp_path))
    # Recent FastAPI keeps included routers nested; iter_route_contexts flattens them.
    flatten = getattr(fastapi_routing, "iter_route_contexts", None)
    routes: Any = flatten(app.routes) if flatten else app.routes
    found = []
    for route in routes:
        methods = getattr(route, "methods", None)  # Mounts (static files) have none
        if methods:
            found.extend((m, str(route.path)) for m in sorted(methods) if m != "HEAD")
    return found


def concrete(path: str) -> str:
    """A path with made-up parameter values (ids that do not exist)."""
    values = {"{job_id}": str(uuid.uuid4()), "{token_id}": "987654", "{action}": "cancel",
              "{slug}": "voters"}  # real-looking values, so a refusal is about auth, not the path
    for name, value in values.items():
        path = path.replace(name, value)
    return re.sub(r"\{[^}]+\}", "x", path)


def is_web(path: str) -> bool:
    return not path.startswith("/api/") and path != "/metrics"


def is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC or (is_web(path) and ("login" in path or path.startswith("/static")))


def request(client: httpx.Client, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.request(method, concrete(path), headers=headers)


def test_route_table_has_every_designed_endpoint(tmp_path: Path) -> None:
    assert set(all_routes(tmp_path)) >= DESIGN_ENDPOINTS


@pytest.mark.parametrize("token", [None, "cct_not-a-real-token", "garbage"],
                         ids=["missing", "invalid", "malformed"])
def test_every_protected_route_rejects_bad_credentials(module_server: Any, tmp_path: Path,
                                                       token: str | None) -> None:
    routes = all_routes(tmp_path)
    checked = 0
    with httpx.Client(base_url=module_server.url, timeout=30, follow_redirects=False) as client:
        for method, path in routes:
            if is_public(method, path):
                continue
            response = request(client, method, path, token)
            if is_web(path):
                assert response.status_code in WEB_REFUSALS, (method, path, response.status_code)
            else:
                error = assert_error(response, 401)
                assert error["code"] in {"missing_token", "invalid_token"}, (method, path, error)
                assert response.headers["www-authenticate"] == "Bearer", (method, path)
            checked += 1
    assert checked >= 15  # the API alone has more; an empty route table must not pass


def test_public_routes_need_no_token(module_server: Any, tmp_path: Path) -> None:
    with httpx.Client(base_url=module_server.url, timeout=30) as client:
        for method, path in all_routes(tmp_path):
            if is_public(method, path):
                response = request(client, method, path, None)
                assert response.status_code != 401, (method, path, response.text)
                assert response.status_code < 500, (method, path, response.text)


def test_viewer_gets_403_on_every_write(module_server: Any, tmp_path: Path) -> None:
    writes = [(m, p) for m, p in all_routes(tmp_path)
              if m not in {"GET", "HEAD", "OPTIONS"} and not is_web(p) and (m, p) not in VIEWER_MAY_WRITE]
    assert len(writes) >= 7
    with httpx.Client(base_url=module_server.url, timeout=30) as client:
        for method, path in writes:
            assert_error(request(client, method, path, module_server.viewer_token), 403, "forbidden")


def test_viewer_may_read(module_server: Any) -> None:
    with module_server.client(module_server.viewer_token) as client:
        assert client.get("/api/v1/jobs").status_code == 200
        assert client.get("/api/v1/auth/me").json()["role"] == "viewer"


def test_session_cookie_is_not_enough_to_write(module_server: Any) -> None:
    """A forged or stale cookie never authorises a write through the API."""
    with httpx.Client(base_url=module_server.url, cookies={"cocoa_session": "forged"}) as client:
        assert_error(client.post(f"/api/v1/jobs/{uuid.uuid4()}/cancel"), 401, "missing_token")
