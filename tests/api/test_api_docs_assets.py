"""``/docs`` loads nothing from another origin and is locked down by a CSP.

FastAPI's default docs page pulled Swagger UI from a CDN (a floating version,
no integrity check) into the origin of the session cookie. Now every asset
comes from this server, out of an installed package, and the page's policy
would stop a script from reaching anywhere else. Over real HTTP to
``cocoa serve``; the page itself is also rendered in Chromium
(``tests/browser/test_docs_page.py``).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from api_helpers import assert_error


class _References(HTMLParser):
    """Every URL the page would load or link: src, href, and friends."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "action", "data", "poster", "srcset"} and value:
                self.urls.append(value)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def csp_directives(response: httpx.Response) -> dict[str, str]:
    policy = response.headers.get("content-security-policy", "")
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


@pytest.fixture(scope="module")
def server(module_server: Any) -> Any:
    return module_server


def test_docs_page_references_no_external_origin(server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = _References()
    refs.feed(page.text)
    assert refs.urls, "the page loads its assets"
    for url in refs.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is on another origin"
        assert url.startswith("/") and not url.startswith("//"), url
    assert refs.inline_scripts == 0  # the CSP forbids inline script: nothing may rely on it
    assert not re.search(r"https?://", page.text), "no absolute URL anywhere in the page"


def test_docs_page_carries_a_strict_csp(server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/docs")
    policy = csp_directives(page)
    assert policy["default-src"] == "default-src 'none'"
    assert policy["script-src"] == "script-src 'self'"
    assert policy["connect-src"] == "connect-src 'self'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_every_asset_the_page_uses_is_served_here_with_the_policy(server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        refs = _References()
        refs.feed(client.get("/docs").text)
        kinds = set()
        for url in refs.urls:
            asset = client.get(url)
            assert asset.status_code == 200, (url, asset.status_code)
            assert asset.content, url
            assert asset.headers["x-content-type-options"] == "nosniff", url
            assert csp_directives(asset)["default-src"] == "default-src 'none'", url
            kinds.add(asset.headers["content-type"].split(";")[0])
        bundle = client.get(next(u for u in refs.urls if "swagger-ui-bundle.js" in u))
    assert {"text/javascript", "text/css", "image/png"} <= kinds
    assert b"SwaggerUIBundle" in bundle.content  # the real library, not a stub


def test_only_the_listed_assets_are_served(server: Any) -> None:
    """No directory listing, no source maps, no demo page pointing at a petstore."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for name in ("index.html", "swagger-ui-bundle.js.map", "swagger-initializer.js", "..%2F__init__.py",
                     "oauth2-redirect.html"):
            response = client.get(f"/docs/assets/{name}")
            assert response.status_code == 404, (name, response.status_code)
        assert_error(client.get("/docs/assets/index.html"), 404, "not_found")


def test_openapi_is_still_served_and_redoc_points_to_docs(server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        schema = client.get("/openapi.json")
        redoc = client.get("/redoc")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")
    assert "/api/v1/jobs" in schema.json()["paths"]
    assert redoc.status_code == 307 and redoc.headers["location"] == "/docs"
