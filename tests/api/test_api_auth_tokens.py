"""``/api/v1/auth``: password login for a token, listing, revocation, ``/me``."""

from __future__ import annotations

from typing import Any

import httpx
from api_helpers import assert_error


def login(server: Any, username: str, password: str, name: str = "t") -> httpx.Response:
    with httpx.Client(base_url=server.url) as anonymous:
        return anonymous.post("/api/v1/auth/tokens",
                              json={"username": username, "password": password, "name": name})


def test_login_returns_a_working_token_once(module_server: Any) -> None:
    response = login(module_server, "viewer", "viewer-password", "laptop")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token"].startswith("cct_") and body["token"].startswith(body["prefix"])
    assert body["username"] == "viewer" and body["role"] == "viewer" and body["name"] == "laptop"
    with module_server.client(body["token"]) as client:
        me = client.get("/api/v1/auth/me").json()
        listed = client.get("/api/v1/auth/tokens").json()["tokens"]
    assert me["username"] == "viewer" and me["role"] == "viewer"
    assert body["id"] in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)  # the secret is never listed


def test_bad_credentials_are_401_without_saying_which(module_server: Any) -> None:
    wrong_password = assert_error(login(module_server, "admin", "nope"), 401, "invalid_credentials")
    no_user = assert_error(login(module_server, "nobody", "nope"), 401, "invalid_credentials")
    assert wrong_password["message"] == no_user["message"]
    with httpx.Client(base_url=module_server.url) as anonymous:
        assert_error(anonymous.post("/api/v1/auth/tokens", json={"username": "admin"}), 422)


def test_viewer_sees_and_revokes_only_own_tokens(module_server: Any) -> None:
    own = login(module_server, "viewer", "viewer-password").json()
    admins = login(module_server, "admin", "admin-password").json()
    with module_server.client(own["token"]) as viewer:
        listed = viewer.get("/api/v1/auth/tokens").json()["tokens"]
        assert {t["username"] for t in listed} == {"viewer"}
        assert_error(viewer.delete(f"/api/v1/auth/tokens/{admins['id']}"), 404, "token_not_found")
        assert viewer.delete(f"/api/v1/auth/tokens/{own['id']}").status_code == 204
        assert_error(viewer.get("/api/v1/auth/me"), 401, "invalid_token")  # revoked at once
    with module_server.client(admins["token"]) as admin:
        assert admin.get("/api/v1/auth/me").status_code == 200  # untouched


def test_admin_sees_and_revokes_everyones_tokens(module_server: Any) -> None:
    victim = login(module_server, "viewer", "viewer-password").json()
    with module_server.client() as admin:
        listed = admin.get("/api/v1/auth/tokens").json()["tokens"]
        assert {"admin", "viewer"} <= {t["username"] for t in listed}
        assert admin.delete(f"/api/v1/auth/tokens/{victim['id']}").status_code == 204
        assert_error(admin.delete(f"/api/v1/auth/tokens/{victim['id']}"), 404)  # already revoked
        revoked = [t for t in admin.get("/api/v1/auth/tokens").json()["tokens"] if t["id"] == victim["id"]]
        assert revoked[0]["revoked_at"] is not None
        assert_error(admin.delete("/api/v1/auth/tokens/0"), 422)
    with module_server.client(victim["token"]) as client:
        assert_error(client.get("/api/v1/jobs"), 401, "invalid_token")
