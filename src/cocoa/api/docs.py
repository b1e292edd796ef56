"""The interactive API docs (``/docs``), served from this server only.

FastAPI's default pages load Swagger UI and Redoc from a CDN: a floating
version, no integrity check, running in the same origin as the session
cookie - whoever controls that CDN could act as any logged-in user. Here
Swagger UI comes from the ``swagger-ui-bundle-v2`` package (a declared
dependency; its files are byte-identical to npm's ``swagger-ui-dist`` of the
same version), its start-up script is ours and served as a file, and every
docs response carries a Content-Security-Policy that allows this origin only:
even a compromised asset could not send data elsewhere.

Why Swagger UI and not Redoc too: one viewer covers the need (read the
schema, try a request with a token), and Redoc has no Python package to
ship it from; ``/redoc`` sends browsers to ``/docs``.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from swagger_ui_bundle import swagger_ui_path

from cocoa.api.errors import error_response

router = APIRouter(include_in_schema=False)

ASSETS_DIR = Path(str(swagger_ui_path))
ASSET_VERSION = ASSETS_DIR.name.removeprefix("swagger-ui-")  # e.g. "5.31.0", for cache busting
ASSETS = {  # only what the page uses: no directory listing, no source maps, no demo page
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

# Swagger UI sets styles through the DOM (allowed by style-src 'self') and
# draws icons from data: URIs; "Try it out" calls this origin only.
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

# No inline script (the policy forbids it): the start-up code is a file.
INIT_SCRIPT = """\
"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""


def _page(title: str) -> str:
    asset = f"/docs/assets/{{}}?v={ASSET_VERSION}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{html.escape(title)} - API docs</title>
<link rel="stylesheet" href="{asset.format('swagger-ui.css')}">
<link rel="icon" type="image/png" href="{asset.format('favicon-32x32.png')}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{asset.format('swagger-ui-bundle.js')}"></script>
<script src="{asset.format('init.js')}"></script>
</body>
</html>
"""


@router.get("/docs", response_class=HTMLResponse)
def docs_page() -> Response:
    """Swagger UI for ``/openapi.json``."""
    return HTMLResponse(_page("Cocoa Canvas jobs"), headers={**DOCS_HEADERS, "Cache-Control": "no-cache"})


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    """One of the few files the docs page loads, from the installed package."""
    headers = {**DOCS_HEADERS, "Cache-Control": "public, max-age=86400"}
    if name == "init.js":
        return Response(INIT_SCRIPT, media_type="text/javascript; charset=utf-8", headers=headers)
    media_type = ASSETS.get(name)
    if media_type is None:
        return error_response(404, f"No docs asset {name!r}.", headers=DOCS_HEADERS)
    return FileResponse(ASSETS_DIR / name, media_type=media_type, headers=headers)


@router.get("/redoc")
def redoc() -> RedirectResponse:
    """Old bookmarks: the docs live at ``/docs``."""
    return RedirectResponse("/docs", status_code=307)
