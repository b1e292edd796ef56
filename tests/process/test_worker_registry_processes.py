"""Real ``cocoa worker`` processes in the worker registry (issue 19): a
standalone worker appears in ``GET /api/v1/workers`` with the job it runs;
SIGKILLed, it drops off once its lease has passed, and its job is rescued
by the other worker - with the history saying so."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from tests.conftest import REPO, LiveServer, cocoa_env, start_live_server, stop_live_server
from tests.polling import wait_for

from cocoa.config import Settings
from cocoa.db.engine import make_engine
from cocoa.jobs.manager import JobManager

pytestmark = pytest.mark.slow
T = TypeVar("T")


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_live_server(db_url, tmp_path, worker=False)
    yield live
    stop_live_server(live)


def start_worker(server: LiveServer, data_dir: Path, name: str) -> subprocess.Popen[bytes]:
    log = (data_dir / f"{name}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "cocoa.cli.main", "worker"], cwd=REPO,
                            env=cocoa_env(server.db_url, data_dir), stdout=log, stderr=subprocess.STDOUT)


def listed(client: httpx.Client) -> dict[int, dict[str, Any]]:
    return {w["pid"]: w for w in client.get("/api/v1/workers").json()["workers"]}


def test_a_killed_worker_drops_off_and_its_job_is_rescued(server: LiveServer, tmp_path: Path) -> None:
    engine = make_engine(server.db_url)
    manager = JobManager(engine, Settings(database_url=server.db_url, data_dir=tmp_path))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        job = manager.create("noop", {"items": 3000, "delay_ms": 2, "batch_size": 10}, created_by="admin")
        procs.append(start_worker(server, tmp_path, "first"))
        with server.client(server.viewer_token) as client:
            first = wait_for(lambda: next((w for w in listed(client).values() if w["current_jobs"]), None),
                             what="a worker running the job")
            assert first["live"] and first["current_jobs"] == [{"id": job.id, "type": "noop"}]
            assert first["pid"] == procs[0].pid
            procs.append(start_worker(server, tmp_path, "second"))
            wait_for(lambda: procs[1].pid in listed(client) or None, what="the second worker")

            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            killed_at = time.monotonic()
            # Live until its lease (3 s) passes, then pruned by the other worker's maintenance.
            wait_for(lambda: procs[0].pid not in listed(client) or None, what="the killed worker to drop off")
            assert time.monotonic() - killed_at >= 2.0  # not before its heartbeat could have aged
            second = wait_for(lambda: (w := listed(client).get(procs[1].pid)) and w["current_jobs"] and w,
                              what="the second worker to take the job over")
            assert second["live"] and second["current_jobs"][0]["id"] == job.id
            events = client.get(f"/api/v1/jobs/{job.id}/history").json()["events"]
        kinds = [(e["event"], e["actor"]) for e in events]
        assert kinds[:2] == [("created", "admin"), ("claimed", first["id"])]
        assert ("lease_lost", "system") in kinds and ("rescued", "system") in kinds
        assert kinds[-1] == ("claimed", second["id"])
        assert first["id"] in next(e["detail"] for e in events if e["event"] == "lease_lost")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        engine.dispose()


def test_a_stopped_worker_deregisters(server: LiveServer, tmp_path: Path) -> None:
    proc = start_worker(server, tmp_path, "clean")
    try:
        with server.client(server.viewer_token) as client:
            wait_for(lambda: proc.pid in listed(client) or None, what="the worker to register")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert proc.pid not in listed(client)  # at once, not after a lease
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
