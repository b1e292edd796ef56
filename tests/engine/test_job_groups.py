"""Job groups on both backends: an upload over the per-job limit becomes a
group of child jobs over row ranges; the group's state is its children's,
control acts on all of them, retry re-runs only what did not complete, and
the import ends exactly as one job over the whole file would."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from tests.polling import wait_for

from cocoa.api.job_objects import JobObjects
from cocoa.config import Settings
from cocoa.db.tables import households, jobs, voters
from cocoa.jobs.manager import JobManager, UploadSource
from cocoa.jobs.model import IllegalTransition, Job, Status
from cocoa.jobs.types import JobValidationError
from cocoa.jobs.worker import Worker
from cocoa.samples.voters import generate


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"voter_batch_size": 20, "poll_seconds": 0.05, "heartbeat_seconds": 0.2,
                              "lease_seconds": 5, "reaper_seconds": 0.2, "parse_ahead_min_rows": 10**9,
                              "max_items_per_job": 50}
    return Settings(**{**values, **overrides})


@pytest.fixture
def voter_file() -> bytes:
    # Repeated voters (last row wins) and messy rows across the range boundaries.
    return generate("nc_statewide", 230, mess_rate=0.1, seed=17).data


def start(manager: JobManager, data: bytes, name: str = "voters.txt") -> Job:
    return manager.create("import_voters", {"format": "auto", "mode": "full"}, created_by="tester",
                          upload=UploadSource(io.BytesIO(data), name, "text/plain"))


@pytest.fixture
def worker_for() -> Iterator[Callable[[JobManager], Worker]]:
    started: list[tuple[Worker, Any]] = []

    def run(manager: JobManager) -> Worker:
        worker = Worker(manager, worker_id=f"w{len(started)}")
        started.append((worker, worker.start_in_thread()))
        return worker

    yield run
    for worker, thread in started:
        worker.stop()
        thread.join(timeout=30)


def finished(manager: JobManager, job_id: str) -> bool:
    return manager.get(job_id).is_terminal


def snapshot(engine: sa.Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """voters and households without ids, job ids and timestamps; a voter's
    household by its address key."""
    skip = {"id", "household_id", "import_job_id", "created_at", "updated_at"}
    with engine.connect() as conn:
        keys = dict(conn.execute(sa.select(households.c.id, households.c.address_key)).all())
        voter_rows = sorted(
            tuple(repr(v) for k, v in row._asdict().items() if k not in skip) + (keys.get(row.household_id),)
            for row in conn.execute(sa.select(voters)))
        home_rows = sorted(tuple(repr(v) for k, v in row._asdict().items() if k not in skip)
                           for row in conn.execute(sa.select(households)))
    return voter_rows, home_rows


def test_group_equals_one_job(db_engine: sa.Engine, voter_file: bytes,
                              worker_for: Callable[[JobManager], Worker]) -> None:
    grouped = JobManager(db_engine, settings())
    group = start(grouped, voter_file)
    assert group.kind == "group"
    kids = grouped.children([group.id])[group.id]
    assert len(kids) == 5 and [k.params["item_range"] for k in kids] == [
        [1, 50], [51, 100], [101, 150], [151, 200], [201, 230]]
    assert all(k.parent_id == group.id and k.upload_id == group.upload_id for k in kids)
    worker_for(grouped)
    wait_for(lambda: finished(grouped, group.id))
    done = grouped.get(group.id)
    assert done.status is Status.COMPLETED and done.processed == 230 and done.total == 230
    errors, total = grouped.errors(group.id, limit=1000)
    assert total == done.error_count > 0 and len(errors) == total
    assert done.result["rows_read"] == 230 and done.result["rows_superseded"] > 0  # counters summed
    as_group = snapshot(db_engine)
    assert len(as_group[0]) > 100

    with db_engine.begin() as conn:  # the same file again, as one job, on an empty domain
        conn.execute(voters.delete())
        conn.execute(households.delete())
    single = JobManager(db_engine, settings(max_items_per_job=1000))
    one = start(single, voter_file)
    assert one.kind == "job" and single.children([one.id])[one.id] == []
    worker_for(single)
    wait_for(lambda: finished(single, one.id))
    assert single.get(one.id).status is Status.COMPLETED
    assert snapshot(db_engine) == as_group
    assert single.get(one.id).error_count == done.error_count


def test_group_object_lists_children_and_sums_progress(db_engine: sa.Engine, voter_file: bytes) -> None:
    manager = JobManager(db_engine, settings())
    group = start(manager, voter_file)
    data = JobObjects(manager).job_object(group.id)
    assert data["kind"] == "group" and data["status"] == "pending"
    assert data["progress"]["total"] == 230 and data["progress"]["processed"] == 0
    assert [c["item_range"] for c in data["children"]][0] == [1, 50]
    assert all(c["status"] == "pending" for c in data["children"])
    child = JobObjects(manager).job_object(data["children"][1]["id"])
    assert child["kind"] == "job" and child["parent_id"] == group.id and child["item_range"] == [51, 100]
    listed, total = manager.list_jobs()
    assert [j.id for j in listed] == [group.id] and total == 1  # the children show under the group


def test_control_acts_on_the_whole_group(db_engine: sa.Engine, voter_file: bytes) -> None:
    manager = JobManager(db_engine, settings())
    group = start(manager, voter_file)
    paused = manager.control(group.id, "pause")
    assert paused.status is Status.PAUSED
    assert {k.status for k in manager.children([group.id])[group.id]} == {Status.PAUSED}
    assert manager.claim("w1") is None  # nothing to run while the group is paused
    assert manager.control(group.id, "resume").status is Status.PENDING
    first = manager.claim("w1")
    assert first is not None and first.parent_id == group.id and first.params["item_range"] == [1, 50]
    assert manager.get(group.id).status is Status.PROCESSING
    cancelled = manager.control(group.id, "cancel")
    statuses = [k.status for k in manager.children([group.id])[group.id]]
    assert statuses[0] is Status.PROCESSING and set(statuses[1:]) == {Status.CANCELLED}
    assert cancelled.status is Status.PROCESSING and cancelled.control is not None
    with pytest.raises(IllegalTransition):
        manager.control(group.id, "resume")


def test_retry_reruns_only_what_did_not_complete(db_engine: sa.Engine, voter_file: bytes,
                                                 worker_for: Callable[[JobManager], Worker]) -> None:
    manager = JobManager(db_engine, settings())
    group = start(manager, voter_file)
    kids = manager.children([group.id])[group.id]
    with db_engine.begin() as conn:  # the last two parts are cancelled before they start
        conn.execute(jobs.update().where(jobs.c.id.in_([kids[3].id, kids[4].id]))
                     .values(status="cancelled"))
    worker_for(manager)
    wait_for(lambda: finished(manager, group.id))
    assert manager.get(group.id).status is Status.CANCELLED
    retried = manager.retry(group.id, created_by="tester")
    assert retried.kind == "group" and retried.retry_of == group.id
    again = manager.children([retried.id])[retried.id]
    assert [k.params["item_range"] for k in again] == [[151, 200], [201, 230]]
    wait_for(lambda: finished(manager, retried.id))
    assert manager.get(retried.id).status is Status.COMPLETED
    assert manager.get(retried.id).processed == 80
    with pytest.raises(IllegalTransition):
        manager.retry(retried.id, created_by="tester")
    with pytest.raises(IllegalTransition) as alone:  # a part is retried through its group
        manager.retry(kids[4].id, created_by="tester")
    assert group.id in str(alone.value)
    assert manager.counts_by_status()["completed"] == 1  # the retried group; its parts count in it


def test_group_limit_refuses_the_upload(db_engine: sa.Engine, voter_file: bytes) -> None:
    manager = JobManager(db_engine, settings(max_items_per_group=200))
    with pytest.raises(JobValidationError) as info:
        start(manager, voter_file)
    assert info.value.code == "too_many_items" and info.value.status == 422
    assert "COCOA_MAX_ITEMS_PER_GROUP" in info.value.message and "230" in info.value.message
    with db_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one() == 0


def test_parcel_layer_over_the_limit_equals_one_job(db_engine: sa.Engine,
                                                    worker_for: Callable[[JobManager], Worker]) -> None:
    """Parcels above the limit run as a group; households are linked once,
    by the last part, after every parcel is in - the same links as one job."""
    from tests.contract.test_parcel_import import insert_households, links, stored_parcels

    from cocoa.samples import parcels as town_mod

    town = town_mod.generate_town(120, seed=5)
    insert_households(db_engine, town)
    data = town_mod.to_geojson(town)

    def run(limit: int) -> tuple[Job, Any]:
        manager = JobManager(db_engine, settings(max_items_per_job=limit, parcel_batch_size=16))
        job = manager.create("parcel_import", {}, created_by="tester",
                             upload=UploadSource(io.BytesIO(data), "county.geojson", "application/json"))
        worker_for(manager)
        wait_for(lambda: finished(manager, job.id))
        keep = ("situs_key", "geometry_wkb", "attributes")
        parcels = {apn: tuple(row[k] for k in keep) for apn, row in stored_parcels(db_engine).items()}
        return manager.get(job.id), (parcels, links(db_engine), manager.children([job.id])[job.id])

    group, (grouped_parcels, grouped_links, kids) = run(50)
    assert group.kind == "group" and group.status is Status.COMPLETED
    assert [k.params["item_range"] for k in kids] == [[1, 50], [51, 100], [101, 120]]
    assert [k.phase for k in kids] == ["import", "import", "linking"]  # only the last links
    assert sum(1 for link in grouped_links if link[1] is not None) > 50
    with db_engine.begin() as conn:
        conn.execute(households.update().values(parcel_id=None, parcel_link_method=None))
        conn.execute(sa.text("DELETE FROM parcels"))
    one, (single_parcels, single_links, none) = run(1000)
    assert one.kind == "job" and none == [] and one.status is Status.COMPLETED
    assert single_parcels == grouped_parcels and single_links == grouped_links
