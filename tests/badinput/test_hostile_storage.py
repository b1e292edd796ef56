"""Hostile load against a locked database, and hostile names for the docs assets.

* A burst of concurrent writes while another process holds the database's
  write lock: every answer is a 503 with ``Retry-After`` within seconds -
  never a 500, never a hang - the process stays live (``/healthz``) while its
  requests wait, and everything works again once the lock is gone. On both
  backends, against a real ``cocoa serve``.
* ``/docs/assets/{name}`` serves a fixed list of files: traversal, encodings,
  NUL bytes, case tricks and huge names get 404, never another file or a 500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer, start_live_server, stop_live_server
from tests.engine.test_storage_errors import ANSWER_DEADLINE, VOTER_CSV, database_locked

BURST = 12


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_live_server(db_url, tmp_path, worker=False, COCOA_REQUEST_LOCK_WAIT_SECONDS="1",
                             COCOA_TOKEN_CACHE_SECONDS="600")
    yield live
    stop_live_server(live)


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The docs do not touch the database: one SQLite server for all names."""
    data_dir = tmp_path_factory.mktemp("docs_server")
    live = start_live_server(f"sqlite:///{data_dir / 'cocoa.db'}", data_dir, worker=False)
    yield live
    stop_live_server(live)


def _write(client: httpx.Client, n: int) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    if n % 3 == 0:
        response = client.post("/api/v1/voters/import", files={"file": (f"v{n}.csv", VOTER_CSV, "text/csv")})
    elif n % 3 == 1:
        response = client.post("/api/v1/jobs/geocoding", json={"city": f"Town {n}"})
    else:
        response = client.post("/api/v1/auth/tokens", json={"username": "admin", "password": "admin-password",
                                                            "name": f"burst {n}"})
    return response, time.monotonic() - started


def test_a_burst_of_writes_against_a_locked_database_is_all_503(server: LiveServer) -> None:
    with server.client() as admin:
        assert admin.get("/api/v1/jobs").status_code == 200  # token cached before the lock
        live: list[int] = []
        stop = threading.Event()

        def probe_liveness() -> None:
            with httpx.Client(base_url=server.url, timeout=5) as probe:
                while not stop.is_set():
                    live.append(probe.get("/healthz").status_code)
                    stop.wait(0.2)

        prober = threading.Thread(target=probe_liveness)
        with database_locked(server.db_url):
            prober.start()
            with ThreadPoolExecutor(max_workers=BURST) as pool:
                answers = list(pool.map(lambda n: _write(admin, n), range(BURST)))
            stop.set()
            prober.join()
        statuses = [response.status_code for response, _ in answers]
        assert statuses == [503] * BURST, [(r.status_code, r.text[:200]) for r, _ in answers if r.status_code != 503]
        assert max(seconds for _, seconds in answers) < ANSWER_DEADLINE * 2  # queued on a small thread pool
        for response, _ in answers:
            assert response.headers["retry-after"].isdigit()
            assert response.json()["error"]["code"] == "database_busy"
        assert live and set(live) == {200}
        after, _ = _write(admin, 0)
        assert after.status_code == 202, after.text
        assert admin.get("/readyz").json()["status"] == "ready"


@pytest.mark.parametrize("name", [
    "..%2F__init__.py", "%2e%2e%2f%2e%2e%2fpyproject.toml", "swagger-ui.css%00.js", "SWAGGER-UI.CSS",
    "swagger-ui-bundle.js.map", "index.html", "oauth2-redirect.html", ".", "x" * 4000, "%252e%252e%252f",
    "swagger-ui.css;.js", "init.js%20",
])
def test_docs_asset_names_reach_no_other_file(docs_server: LiveServer, name: str) -> None:
    with httpx.Client(base_url=docs_server.url, timeout=30) as client:
        response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 404, (name, response.status_code, response.text[:200])
    assert response.json()["error"]["code"] == "not_found"
