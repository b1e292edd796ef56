"""``cocoa serve`` stops like ``cocoa worker`` (issue 21, item 4): on SIGTERM
its embedded worker finishes the current batch, hands the job back to
``pending``, and the process exits 0 - not 143, which ``make`` reports as
"Terminated". A real ``cocoa serve`` process, a real signal, the job's state
read from the database.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from tests.conftest import free_port, migrated_manager
from tests.polling import wait_for
from tests.unit.cli_helpers import newcomer

from cocoa.jobs.model import Status


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_finishes_the_batch_hands_the_job_back_and_exits_zero(tmp_path: Path, processes: int) -> None:
    user = newcomer(tmp_path)
    url = f"sqlite:///{tmp_path / 'cocoa.db'}"
    manager = migrated_manager(url)
    port = free_port()
    log = tmp_path / "serve.log"
    server = user.popen("serve", "--port", str(port), "--processes", str(processes), log=log,
                        COCOA_DATABASE_URL=url, COCOA_DATA_DIR=str(tmp_path),
                        COCOA_POLL_SECONDS="0.1", COCOA_HEARTBEAT_SECONDS="0.5")
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), what="the server to answer")
        job = manager.create("noop", {"items": 400, "delay_ms": 20, "batch_size": 10}, created_by="t")
        wait_for(lambda: manager.get(job.id).processed >= 10, what="the first batch")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    stopped = manager.get(job.id)
    assert stopped.status is Status.PENDING and stopped.lease_owner is None, log.read_text()
    assert stopped.processed % 10 == 0 and 10 <= stopped.processed < 400  # a batch boundary
    if processes == 1:  # the children of --processes N do not set up logging of their own
        assert "released at a batch boundary" in log.read_text()
    manager.engine.dispose()
