"""``GET /jobs/{id}/events``: live progress over Server-Sent Events.

Over real HTTP on both backends, plus in-process checks of the stream's
keep-alive and disconnect handling (which would need 15 s of wall time or a
socket-level disconnect to observe from outside).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from api_helpers import assert_error, create_noop, manager_for, wait_status

from cocoa.api.jobs_routes import JobEventStream
from cocoa.jobs.model import Job, Status


def read_events(client: httpx.Client, job_id: str, timeout: float = 60) -> list[tuple[str, dict[str, Any]]]:
    """Every (event, data) until the server ends the stream."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = "message"
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
    return events


def test_stream_reports_increasing_progress_and_ends_at_completion(module_server: Any,
                                                                   tmp_path: Path) -> None:
    manager = manager_for(module_server, tmp_path)
    job = create_noop(manager, items=40, delay_ms=20, batch_size=5)
    with module_server.client() as client:
        events = read_events(client, job.id)  # returns only because the server closed the stream
    manager.engine.dispose()
    assert {name for name, _ in events} == {"job"}
    assert all(data["id"] == job.id for _, data in events)
    processed = [data["progress"]["processed"] for _, data in events]
    assert processed == sorted(processed), processed
    assert len({p for p in processed if 0 < p < 40}) >= 2, f"too few progress events: {processed}"
    final = events[-1][1]
    assert final["status"] == "completed"
    assert final["progress"]["processed"] == 40 and final["progress"]["percent"] == 100.0
    assert all(data["status"] != "completed" for _, data in events[:-1])  # exactly one final snapshot


def test_stream_of_a_finished_job_is_one_snapshot(module_server: Any, tmp_path: Path) -> None:
    manager = manager_for(module_server, tmp_path)
    job = create_noop(manager, items=3)
    with module_server.client() as client:
        wait_status(client, job.id, "completed")
        events = read_events(client, job.id, timeout=10)
    manager.engine.dispose()
    assert len(events) == 1 and events[0][1]["status"] == "completed"


def test_stream_is_authenticated_and_404s_unknown_jobs(module_server: Any) -> None:
    with httpx.Client(base_url=module_server.url) as anonymous:
        assert_error(anonymous.get(f"/api/v1/jobs/{uuid.uuid4()}/events"), 401)
    with module_server.client(module_server.viewer_token) as client:
        assert_error(client.get(f"/api/v1/jobs/{uuid.uuid4()}/events"), 404, "job_not_found")


# ----------------------------------------------------------------------------- in-process


class FakeManager:
    """Serves a scripted sequence of job states, one per poll."""

    def __init__(self, states: list[Job]) -> None:
        self.states = states
        self.reads = 0

    def get(self, job_id: str) -> Job:
        state = self.states[min(self.reads, len(self.states) - 1)]
        self.reads += 1
        return state

    def job_dict(self, job: Job) -> dict[str, Any]:
        return {"id": job.id, "status": job.status.value, "processed": job.processed}


def base_job(tmp_path: Path) -> Job:
    manager = manager_for_sqlite(tmp_path)
    job = create_noop(manager, items=5)
    manager.engine.dispose()
    return job


def manager_for_sqlite(tmp_path: Path) -> Any:
    from cocoa.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'events.db'}"
    upgrade(url)

    class Server:
        db_url = url

    return manager_for(Server(), tmp_path)


async def collect(stream: JobEventStream, limit: int = 50) -> list[str]:
    chunks = []
    async for chunk in stream.events():
        chunks.append(chunk)
        if len(chunks) >= limit:
            break
    return chunks


async def never_disconnected() -> bool:
    return False


def test_keepalive_comment_when_nothing_changes(tmp_path: Path) -> None:
    job = replace(base_job(tmp_path), status=Status.PROCESSING)
    done = replace(job, status=Status.COMPLETED, updated_at=job.updated_at + timedelta(seconds=1))
    fake = FakeManager([job] * 6 + [done])
    stream = JobEventStream(fake, job, never_disconnected, poll=0.01, keepalive=0.025)  # type: ignore[arg-type]
    chunks = asyncio.run(collect(stream))
    assert any(c.startswith(": keep-alive") for c in chunks), chunks
    snapshots = [c for c in chunks if c.startswith("event: job")]
    assert len(snapshots) == 2 and '"completed"' in snapshots[-1]


def test_stream_stops_when_the_client_disconnects(tmp_path: Path) -> None:
    job = replace(base_job(tmp_path), status=Status.PROCESSING)
    fake = FakeManager([job])
    polls = 0

    async def gone_after_two_polls() -> bool:
        nonlocal polls
        polls += 1
        return polls > 2

    stream = JobEventStream(fake, job, gone_after_two_polls, poll=0.01)  # type: ignore[arg-type]
    chunks = asyncio.run(collect(stream))  # ends by itself although the job never finishes
    assert len([c for c in chunks if c.startswith("event: job")]) == 1
    assert fake.reads == 2
