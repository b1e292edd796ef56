"""The map pages add the tile server's origin to img-src, and nothing else (a real server)."""

from __future__ import annotations

from pathlib import Path

import httpx
from api_helpers import root

from cocoa.web.browse import _origin


def test_origin_of_tile_urls() -> None:
    assert _origin("https://tile.example.org/{z}/{x}/{y}.png") == "https://tile.example.org"
    assert _origin("http://127.0.0.1:8080/t/{z}/{x}/{y}.png") == "http://127.0.0.1:8080"
    assert _origin("") == "" and _origin("javascript:alert(1)") == "" and _origin("/tiles/{z}") == ""


def map_policy(tmp_path: Path, tile_url: str) -> str:
    data_dir = tmp_path / (tile_url and "tiles" or "none")
    data_dir.mkdir()
    server = root.start_live_server(f"sqlite:///{data_dir / 'cocoa.db'}", data_dir, worker=False,
                                    COCOA_MAP_TILE_URL=tile_url)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            login = client.get("/login")
            token = login.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            client.post("/login", data={"username": "viewer", "password": "viewer-password",
                                        "csrf_token": token, "next": "/map"})
            response = client.get("/map")
            assert response.status_code == 200, response.text
            assert 'data-tile-url="' + tile_url.replace("&", "&amp;") + '"' in response.text
            return response.headers["content-security-policy"]
    finally:
        root.stop_live_server(server)


def test_map_page_allows_only_the_tile_origin(tmp_path: Path) -> None:
    with_tiles = map_policy(tmp_path, "https://tile.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://tile.example.org;" in with_tiles
    assert "script-src 'self';" in with_tiles and "style-src 'self';" in with_tiles
    assert "img-src 'self' data:;" in map_policy(tmp_path, "")
