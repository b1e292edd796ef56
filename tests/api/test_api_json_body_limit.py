"""Bodies that are not forms are small, and refused before anyone reads them.

FastAPI reads a JSON body whole, into memory, before the route's
dependencies know who is asking, and ``POST /api/v1/auth/tokens`` is public:
an anonymous client declaring 50 MB made the server wait for (and hold) all
of it. Against a real server: a declared length over the cap is answered at
once, without the body; a chunked one is cut off at the cap; a normal JSON
request still works.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from api_helpers import assert_error

from cocoa.api.bodies import JSON_BODY_BYTES

DEADLINE = 10.0
ROUTES = ("/api/v1/auth/tokens", "/api/v1/jobs/geocoding")


def _declare_big_body(url: str, path: str, declared: int = 50 * 1024 * 1024) -> tuple[int, dict[str, Any]]:
    """Declare ``declared`` bytes, send 64 KiB, read the answer (a server that
    waits for the body times out here instead)."""
    parts = urlsplit(url)
    head = (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\nConnection: close\r\n\r\n").encode()
    received = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=DEADLINE) as sock:
        sock.sendall(head + b" " * 65536)
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"no answer to {path} within {DEADLINE}s: the server waits for the body") \
                    from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                break
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body)


@pytest.mark.parametrize("path", ROUTES)
def test_a_declared_large_json_body_is_refused_before_it_is_read(module_server: Any, path: str) -> None:
    status, body = _declare_big_body(module_server.url, path)
    assert status == 413
    assert body["error"]["code"] == "body_too_large"
    assert body["error"]["details"] == {"limit_bytes": JSON_BODY_BYTES}


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"username": "admin", "password": "'
    for _ in range(total // 65536):
        yield b"x" * 65536


def test_a_chunked_json_body_is_cut_off_at_the_limit(module_server: Any) -> None:
    with httpx.Client(base_url=module_server.url, timeout=DEADLINE) as anonymous:
        response = anonymous.post("/api/v1/auth/tokens", content=_chunks(8 * JSON_BODY_BYTES),
                                  headers={"Content-Type": "application/json"})
    error = assert_error(response, 413, "body_too_large")
    assert "multipart/form-data" in error["message"]


def test_a_normal_json_request_still_works(module_server: Any) -> None:
    with httpx.Client(base_url=module_server.url, timeout=DEADLINE) as anonymous:
        response = anonymous.post("/api/v1/auth/tokens",
                                  json={"username": "viewer", "password": "viewer-password", "name": "ok"})
    assert response.status_code == 201, response.text
