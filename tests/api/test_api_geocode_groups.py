"""Geocoding selections above the per-job limit run as job groups, over HTTP
on both backends: one snapshot, children over seq ranges of it, every
household sent to the (loopback stub) provider exactly once, aggregate
counters, control and retry on the group (a retry re-runs only the parts
that did not complete), ``unmatched_in_job`` of a group, and a 422 above
the group limit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from api_helpers import assert_error, root, wait_status

from cocoa.db.engine import make_engine
from cocoa.db.tables import households, jobs
from cocoa.domain.addresses import household_key
from stubs.geocoder_stub import CENSUS_PATH, GeocoderStub, Reply

GEOCODE = "/api/v1/jobs/geocoding"
PER_JOB, PER_GROUP = 4, 20
HOUSEHOLDS = 10  # three children: 1-4, 5-8, 9-10
RANGES = [[1, 4], [5, 8], [9, 10]]


@pytest.fixture
def stub() -> Iterator[GeocoderStub]:
    with GeocoderStub(synthetic=True) as server:
        yield server


def env_for(stub: GeocoderStub) -> dict[str, str]:
    return {"COCOA_MAX_ITEMS_PER_JOB": str(PER_JOB), "COCOA_MAX_ITEMS_PER_GROUP": str(PER_GROUP),
            "COCOA_GEOCODE_BATCH_SIZE": "2", "COCOA_CENSUS_BASE_URL": stub.census_url,
            "COCOA_CENSUS_RATE_PER_SECOND": "1000", "COCOA_PROVIDER_MAX_RETRIES": "0",
            "COCOA_PROVIDER_BACKOFF_SECONDS": "0.01"}


@pytest.fixture
def server(db_url: str, tmp_path: Path, stub: GeocoderStub) -> Iterator[Any]:
    live = root.start_live_server(db_url, tmp_path, **env_for(stub))
    yield live
    root.stop_live_server(live)


@pytest.fixture
def idle_server(db_url: str, tmp_path: Path, stub: GeocoderStub) -> Iterator[Any]:
    live = root.start_live_server(db_url, tmp_path, worker=False, **env_for(stub))
    yield live
    root.stop_live_server(live)


def add_households(db_url: str, count: int, *, start: int = 1, nowhere: int = 0) -> list[int]:
    """``count`` households on distinct streets; the last ``nowhere`` of them
    the stub cannot place."""
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    rows = []
    for n in range(start, start + count):
        street = f"{n} NOWHERE RD" if n >= start + count - nowhere else f"{n} OAK ST"
        rows.append({"address_key": household_key(street, "Durham", "NC", "27701"), "street_line": street,
                     "city": "Durham", "state": "NC", "zip_code": "27701", "county": "Durham",
                     "precinct": "P-1", "created_at": now, "updated_at": now})
    with engine.begin() as conn:
        ids = list(conn.execute(sa.insert(households).returning(households.c.id), rows).scalars())
    engine.dispose()
    return ids


def statuses(db_url: str) -> dict[int, str | None]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        found = {row.id: row.geocode_status
                 for row in conn.execute(sa.select(households.c.id, households.c.geocode_status))}
    engine.dispose()
    return found


def child_params(db_url: str, group_id: str) -> list[dict[str, Any]]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        found = list(conn.execute(sa.select(jobs.c.params).where(jobs.c.parent_id == group_id)
                                  .order_by(jobs.c.created_at)).scalars())
    engine.dispose()
    return found


def sent_streets(stub: GeocoderStub) -> Counter[str]:
    """How often each street reached the provider (in answered requests)."""
    return Counter(row[1] for request in stub.recorded(CENSUS_PATH) if request.status == 200
                   for row in request.rows)


def start(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post(GEOCODE, json={"provider": "census", **body})
    assert response.status_code == 202, response.text
    return dict(response.json()["job"])


def test_selection_over_the_limit_runs_as_a_group(server: Any, stub: GeocoderStub) -> None:
    add_households(server.db_url, HOUSEHOLDS, nowhere=1)
    with server.client() as admin:
        group = start(admin)
        assert group["kind"] == "group" and [c["item_range"] for c in group["children"]] == RANGES
        done = wait_status(admin, group["id"], "completed")
        assert done["progress"]["total"] == done["progress"]["processed"] == HOUSEHOLDS
        assert all(c["status"] == "completed" for c in done["children"])
        assert done["result"]["matched"] == HOUSEHOLDS - 1 and done["result"]["no_match"] == 1
        sent = sent_streets(stub)
        assert len(sent) == HOUSEHOLDS and set(sent.values()) == {1}  # each exactly once
        assert Counter(statuses(server.db_url).values()) == {"matched": HOUSEHOLDS - 1, "no_match": 1}
        unmatched = admin.get(f"/api/v1/jobs/{group['id']}/results", params={"kind": "unmatched"}).json()
        assert unmatched["total"] == 1 and unmatched["items"][0]["street_line"] == f"{HOUSEHOLDS} NOWHERE RD"
        last_child = done["children"][-1]["id"]  # the range 9-10 holds the one miss
        assert admin.get(f"/api/v1/jobs/{last_child}/results", params={"kind": "unmatched"}).json()["total"] == 1
        first_child = done["children"][0]["id"]
        assert admin.get(f"/api/v1/jobs/{first_child}/results", params={"kind": "unmatched"}).json()["total"] == 0
        listed = admin.get("/api/v1/jobs").json()["jobs"]
        assert [j["id"] for j in listed] == [group["id"]]  # one row: the group
        # "Just the unmatched of that job, with another provider": all of the group's children.
        again = start(admin, unmatched_in_job=group["id"], provider="local")
        assert again["kind"] == "job"
        assert wait_status(admin, again["id"], "completed")["progress"]["total"] == 1
        # An explicit limit caps the selection; above the per-job limit it is a group too.
        capped = start(admin, only_missing=False, limit=6)
        assert [c["item_range"] for c in capped["children"]] == [[1, 4], [5, 6]]
        wait_status(admin, capped["id"], "completed")


def test_over_the_group_limit_is_a_422_that_says_what_to_do(idle_server: Any) -> None:
    add_households(idle_server.db_url, PER_GROUP + 1)
    with idle_server.client() as admin:
        refused = assert_error(admin.post(GEOCODE, json={"provider": "census"}), 422, "too_many_items")
        assert f"{PER_GROUP + 1}" in refused["message"] and "COCOA_MAX_ITEMS_PER_GROUP" in refused["message"]
        assert "'limit'" in refused["message"]
        assert refused["details"] == {"matched": PER_GROUP + 1, "max_items_per_group": PER_GROUP,
                                      "max_items_per_job": PER_JOB}
        too_big = assert_error(admin.post(GEOCODE, json={"limit": PER_GROUP + 1}), 422, "invalid_limit")
        assert f"1 to {PER_GROUP}" in too_big["message"]
        assert admin.get("/api/v1/jobs").json()["jobs"] == []  # nothing was created
        capped = start(admin, limit=PER_GROUP)
        assert capped["progress"]["total"] == PER_GROUP and len(capped["children"]) == PER_GROUP // PER_JOB


def test_control_acts_on_the_group(idle_server: Any) -> None:
    add_households(idle_server.db_url, HOUSEHOLDS)
    with idle_server.client() as admin:
        group = start(admin)
        paused = admin.post(f"/api/v1/jobs/{group['id']}/pause")
        assert paused.status_code == 200 and {c["status"] for c in paused.json()["children"]} == {"paused"}
        cancelled = admin.post(f"/api/v1/jobs/{group['id']}/cancel").json()
        assert cancelled["status"] == "cancelled"
        assert {c["status"] for c in cancelled["children"]} == {"cancelled"}
        retried = admin.post(f"/api/v1/jobs/{group['id']}/retry")
        assert retried.status_code == 202, retried.text
        again = retried.json()["job"]
        assert again["kind"] == "group" and [c["item_range"] for c in again["children"]] == RANGES
        # The retry's children walk the original snapshot.
        assert {p["selection_of"] for p in child_params(idle_server.db_url, again["id"])} == {group["id"]}


def test_retry_reruns_only_the_parts_that_failed(server: Any, stub: GeocoderStub) -> None:
    add_households(server.db_url, HOUSEHOLDS)
    stub.set_outage(CENSUS_PATH, Reply(503), after=PER_JOB // 2)  # the first child's requests pass
    with server.client() as admin:
        group = start(admin)
        failed = wait_status(admin, group["id"], "failed")
        assert [c["status"] for c in failed["children"]] == ["completed", "failed", "failed"]
        assert "Part 2 of 3 failed" in failed["error"] and "census" in failed["error"]
        stub.set_outage(CENSUS_PATH, None)
        retried = admin.post(f"/api/v1/jobs/{group['id']}/retry")
        assert retried.status_code == 202, retried.text
        again = retried.json()["job"]
        assert [c["item_range"] for c in again["children"]] == RANGES[1:]
        done = wait_status(admin, again["id"], "completed")
        assert done["progress"]["processed"] == HOUSEHOLDS - PER_JOB
        assert set(statuses(server.db_url).values()) == {"matched"}
        assert set(sent_streets(stub).values()) == {1}  # nothing answered was asked again
        # What the retry touched: its children's ranges of the first group's snapshot.
        touched = admin.get("/api/v1/households", params={"job_id": again["id"], "limit": 50}).json()
        assert touched["total"] == HOUSEHOLDS - PER_JOB
        child = again["children"][0]["id"]
        assert admin.get("/api/v1/households", params={"job_id": child}).json()["total"] == PER_JOB
        # unmatched_in_job of the first group: what its children left (nothing now).
        assert_error(admin.post(GEOCODE, json={"unmatched_in_job": group["id"]}), 422, "empty_selection")


def test_cli_geocode_reports_the_group_and_watch_follows_it(server: Any, stub: GeocoderStub,
                                                             tmp_path: Path) -> None:
    from test_cli_remote import remote
    from tests.unit.cli_helpers import newcomer

    add_households(server.db_url, HOUSEHOLDS)
    run = remote(newcomer(tmp_path), server, "geocode", "--provider", "census", "--watch")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"a group of 3 jobs over {HOUSEHOLDS} items" in run.stdout
    group_id = run.stdout.split("Created job ", 1)[1].split(" ", 1)[0]
    assert f"Job {group_id} completed" in run.stdout and "group, part" in run.stdout
    assert run.stdout.count('"status": "completed"') == 3  # every child, listed at the end
    assert set(statuses(server.db_url).values()) == {"matched"}
