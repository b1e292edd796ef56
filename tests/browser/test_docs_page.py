"""``/docs`` works in a real Chromium under its strict CSP, from this server only.

The HTTP test (``tests/api/test_api_docs_assets.py``) proves the page names
no other origin; this one proves Swagger UI really runs under the policy
(no inline script, no CDN) and that the browser asks nothing of any other
host while it renders and expands an operation.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

with contextlib.suppress(ImportError):  # without it the browser fixture skips (or fails in CI) first
    from playwright.sync_api import Browser, expect


def test_swagger_ui_renders_under_its_csp_without_other_origins(browser: Browser,
                                                                 sqlite_live_server: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    requested: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(f"{sqlite_live_server.url}/docs")
        operation = page.locator(".opblock", has_text="/api/v1/jobs/geocoding").first
        expect(operation).to_be_visible(timeout=15_000)
        operation.locator(".opblock-summary").click()  # renders the schema and example views
        expect(operation.get_by_text("Parameters").first).to_be_visible()
    finally:
        context.close()
    origins = {urlsplit(url).netloc for url in requested if not url.startswith("data:")}
    assert origins == {urlsplit(sqlite_live_server.url).netloc}, origins
    violations = [line for line in console if "Content Security Policy" in line or "Refused" in line]
    assert violations == []
