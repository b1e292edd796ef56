"""``import_voters`` against SQLite and PostgreSQL (``db_engine`` is parametrised).

A tiny local loop stands in for the engine (validate inside the creation
transaction, plan, then run_batch -> ``batch.write`` in its own transaction,
the checkpoint kept only after the commit), so these tests do not depend on
the worker. Every file comes from the seeded generators in
``cocoa.samples.voters``, which also give the ground truth.
"""

from __future__ import annotations

import io
import json
import os
import signal
import uuid
from collections import Counter
from itertools import combinations
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import helper_processes
from tests.contract import driving
from tests.contract.driving import Run

from cocoa.config import Settings
from cocoa.db.engine import make_engine, reading
from cocoa.db.migrate import upgrade
from cocoa.db.tables import households, voters
from cocoa.jobs.pipeline import Pipeline
from cocoa.jobs.types import Batch, CreateContext, JobValidationError, RunContext
from cocoa.jobtypes.import_voters import ImportVoters
from cocoa.jobtypes.import_voters import job as iv
from cocoa.samples.voters import GeneratedFile, generate

JOB = ImportVoters()
LAYOUTS = ("nc_statewide", "oh_swvf", "contra_costa", "simple_csv")


# ------------------------------------------------------------------ the local driver


def create(engine: sa.Engine, data: bytes, fmt: str = "auto", mode: str = "full",
           settings: Settings | None = None) -> Run:
    job_id = str(uuid.uuid4())
    with engine.begin() as conn:
        params = JOB.validate(CreateContext(
            conn=conn, job_id=job_id, params={"format": fmt, "mode": mode},
            settings=settings or Settings(), upload=io.BytesIO(data)))
    json.dumps(params)  # params must be storable as JSON
    return Run(job_id, params, data)


def drive(engine: sa.Engine, run: Run, batch_size: int = 1000,
          max_batches: int | None = None, settings: Settings | None = None) -> Run:
    return driving.drive(JOB, engine, run, batch_size=batch_size, max_batches=max_batches,
                         settings=settings)


def import_file(engine: sa.Engine, data: bytes, fmt: str = "auto", mode: str = "full",
                batch_size: int = 1000, settings: Settings | None = None) -> Run:
    return drive(engine, create(engine, data, fmt, mode), batch_size, settings=settings)


def voter_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(voters).order_by(voters.c.id))]


def household_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with reading(engine) as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(households))]


def truth_key(row: dict[str, Any], gen: GeneratedFile) -> str:
    return str(row["external_id"] if gen.key_field == "external_id" else row["email"])


def pairwise(truth: dict[str, str], found: dict[str, Any]) -> tuple[float, float]:
    """Pairwise precision and recall of a grouping against the true one."""
    same_true = same_found = both = 0
    for a, b in combinations(sorted(truth), 2):
        t = truth[a] == truth[b]
        f = found[a] is not None and found[a] == found[b]
        same_true += t
        same_found += f
        both += t and f
    return (both / same_found if same_found else 1.0, both / same_true if same_true else 1.0)


# ------------------------------------------------------------------ whole imports


@pytest.mark.parametrize("layout", LAYOUTS)
def test_import_matches_ground_truth(db_engine: sa.Engine, layout: str) -> None:
    gen = generate(layout, 400, seed=11)
    run = import_file(db_engine, gen.data, batch_size=97)

    assert run.params["format"] == layout and run.params["requested_format"] == "auto"
    assert run.result["layout"] == layout and layout in run.result["detected"]
    assert run.total == gen.rows == run.processed == run.result["rows_read"]
    fatal = {e.item_index: e.code for e in run.errors if e.severity == "error"}
    warned = {e.item_index: e.code for e in run.errors if e.severity == "warning"}
    assert fatal == gen.errors
    assert warned == gen.warnings
    assert all(e.item_ref == f"row {e.item_index}" for e in run.errors)

    rows = voter_rows(db_engine)
    assert len(rows) == len(gen.households) == run.result["voters_created"]
    assert {truth_key(r, gen) for r in rows} == set(gen.households)
    for r in rows:
        assert (r["first_name"], r["last_name"]) == gen.names[truth_key(r, gen)]
        assert r["source"] == layout and len(r["record_hash"]) == 64


@pytest.mark.parametrize("layout", LAYOUTS)
def test_household_grouping_is_exact(db_engine: sa.Engine, layout: str) -> None:
    """Pairwise precision and recall of households against the generator's truth."""
    gen = generate(layout, 600, seed=5)
    import_file(db_engine, gen.data, batch_size=250)
    found = {truth_key(r, gen): r["household_id"] for r in voter_rows(db_engine)}
    precision, recall = pairwise(gen.households, found)
    assert (precision, recall) == (1.0, 1.0)
    assert len(set(found.values())) == len(set(gen.households.values()))


def test_full_source_record_is_kept_verbatim(db_engine: sa.Engine) -> None:
    gen = generate("oh_swvf", 300, seed=3)
    import_file(db_engine, gen.data)
    rows = voter_rows(db_engine)
    header = gen.data.split(b"\r\n", 1)[0].decode().split(",")
    # every column, the extra election columns too (JSONB does not keep key order)
    assert all(sorted(r["record"]) == sorted(header) for r in rows)
    firsts = {r["first_name"] for r in rows}
    lasts = {r["last_name"] for r in rows}
    assert '=HYPERLINK("http://evil.example/x","click")' in firsts
    assert "<script>alert(1)</script>" in lasts
    assert 'O"NEIL' in lasts and "MUÑOZ" in lasts


def test_overlong_values_are_cut_to_their_columns_and_kept_whole_in_the_record(
        db_engine: sa.Engine) -> None:
    """A 200-character city and a 300-character name: the voter's and the
    household's columns hold what fits, the source record all of it."""
    city, name = "C" * 200, "N" * 300
    data = ("first_name,last_name,email,address,city,state,zip\n"
            f"{name},DOE,a@x,1 OAK ST,{city},NC,\n").encode()
    assert import_file(db_engine, data).result["voters_created"] == 1
    (voter,), (home,) = voter_rows(db_engine), household_rows(db_engine)
    assert (voter["first_name"], voter["res_city"]) == (name[:128], city[:128])
    assert (voter["record"]["first_name"], voter["record"]["city"]) == (name, city)
    assert home["city"] == city[:128] and home["voter_count"] == 1


def test_households_counts_and_columns(db_engine: sa.Engine) -> None:
    gen = generate("nc_statewide", 500, seed=8)
    import_file(db_engine, gen.data, batch_size=120)
    per_household = Counter(r["household_id"] for r in voter_rows(db_engine))
    homes = household_rows(db_engine)
    assert {h["id"]: h["voter_count"] for h in homes} == dict(per_household)
    assert all(h["street_line"] and h["state"] == "NC" and len(h["zip_code"]) == 5
               for h in homes)


# ------------------------------------------------------------------ re-import and modes


def test_reimport_same_file_changes_nothing(db_engine: sa.Engine) -> None:
    gen = generate("nc_statewide", 400, seed=2)
    first = import_file(db_engine, gen.data, batch_size=64)
    before_v, before_h = voter_rows(db_engine), household_rows(db_engine)

    second = import_file(db_engine, gen.data, batch_size=64)

    assert second.result["voters_unchanged"] == first.result["voters_created"]
    assert second.result.get("voters_created", 0) == second.result.get("voters_updated", 0) == 0
    assert second.result.get("households_created", 0) == 0
    assert voter_rows(db_engine) == before_v  # updated_at and import_job_id untouched
    assert household_rows(db_engine) == before_h


@pytest.mark.parametrize("parse_ahead_min_rows", [10**9, 0], ids=["in-worker", "helper"])
def test_last_row_wins_across_batch_boundary(db_engine: sa.Engine,
                                             parse_ahead_min_rows: int) -> None:
    """Also when a helper parses the first batches while the worker is still
    looking for repeated ids: the earlier row is dropped when it is taken."""
    gen = generate("contra_costa", 300, seed=4)
    lines = gen.data.split(b"\r\n")
    moved = lines[3].split(b"\t")
    moved[4] = b"LASTROW"  # FirstName
    moved[10], moved[12] = b"77", b"SYCAMORE"  # HouseNumber, StreetName
    moved[15] = moved[16] = b""  # no unit
    data = b"\r\n".join([*lines[:-1], b"\t".join(moved), b""])
    voter_id = moved[1].decode()

    settings = Settings(parse_ahead_min_rows=parse_ahead_min_rows)
    # The first and the last copy in different batches (the first batch, the last batch).
    run = import_file(db_engine, data, batch_size=50, settings=settings)

    rows = [r for r in voter_rows(db_engine) if r["external_id"] == voter_id]
    assert len(rows) == 1 and rows[0]["first_name"] == "LASTROW"
    assert rows[0]["res_street"].startswith("77 ")
    assert run.result["rows_superseded"] >= 1
    again = import_file(db_engine, data, batch_size=50, settings=settings)
    assert again.result.get("voters_updated", 0) == 0


def test_incremental_only_updates_existing_voters(db_engine: sa.Engine) -> None:
    old = generate("oh_swvf", 200, seed=9, mess_rate=0.0)
    import_file(db_engine, old.data)
    header, *body = old.data.split(b"\r\n")
    changed = [line.replace(b"ACTIVE", b"INACTIVE") for line in body[:50]]
    newcomer = generate("oh_swvf", 30, seed=99, mess_rate=0.0).data.split(b"\r\n")[1:11]
    newcomer = [line.replace(b"OH00", b"OHNEW", 1) for line in newcomer]
    data = b"\r\n".join([header, *changed, *newcomer, b""])
    n_changed = sum(b"INACTIVE" in line for line in changed)

    run = import_file(db_engine, data, mode="incremental", batch_size=17)

    assert run.result["voters_skipped"] == 10
    assert run.result.get("voters_created", 0) == 0
    assert run.result["voters_updated"] == n_changed > 0
    assert run.result["voters_unchanged"] == 50 - n_changed
    rows = voter_rows(db_engine)
    assert len(rows) == len(old.households)
    assert not any(r["external_id"].startswith("OHNEW") for r in rows)


def test_household_counts_follow_moves(db_engine: sa.Engine) -> None:
    gen = generate("nc_statewide", 60, seed=1, mess_rate=0.0)
    import_file(db_engine, gen.data)
    lines = gen.data.split(b"\n")
    cols = lines[1].split(b"\t")
    cols2 = lines[2].split(b"\t")
    left = {r["household_id"] for r in voter_rows(db_engine)
            if r["external_id"] in (cols[3].strip(b'"').decode(), cols2[3].strip(b'"').decode())}
    # res_street_address, res_city_desc, zip_code: both voters move to one new home
    cols[12], cols[13], cols[15] = b'"5  ELM   ST"', b'"DURHAM"', b'"27999"'
    cols2[12], cols2[13], cols2[15] = b'"5 ELM STREET"', b'"DURHAM"', b'"27999"'
    run = import_file(db_engine, b"\n".join([lines[0], b"\t".join(cols), b"\t".join(cols2),
                                             b""]))
    assert run.result["voters_updated"] == 2 and run.result["households_created"] == 1

    per_household = Counter(r["household_id"] for r in voter_rows(db_engine))
    counts = {h["id"]: h["voter_count"] for h in household_rows(db_engine)}
    assert {k: v for k, v in counts.items() if v} == dict(per_household)
    assert all(counts[h] == per_household.get(h, 0) for h in counts)
    new_home = {r["household_id"] for r in voter_rows(db_engine)
                if r["res_street"] in ("5 ELM ST", "5 ELM STREET")}
    assert len(new_home) == 1 and counts[new_home.pop()] == 2
    assert all(counts[h] == per_household.get(h, 0) for h in left)


def test_household_counts_follow_moves_between_existing_households(db_engine: sa.Engine) -> None:
    """Voters moving into households that already exist, and a household left
    empty: every count still equals its voters (counts move by deltas)."""
    gen = generate("nc_statewide", 80, seed=5, mess_rate=0.0)
    import_file(db_engine, gen.data)
    lines = gen.data.split(b"\n")
    rows = [line.split(b"\t") for line in lines[1:] if line]
    target = rows[-1]  # the last voter's home exists; the first three move in
    moved = []
    for cols in rows[:3]:
        cols[12], cols[13], cols[15] = target[12], target[13], target[15]
        moved.append(b"\t".join(cols))
    run = import_file(db_engine, b"\n".join([lines[0], *moved, b""]))
    assert run.result["voters_updated"] == 3 and run.result["households_created"] == 0

    per_household = Counter(r["household_id"] for r in voter_rows(db_engine))
    counts = {h["id"]: h["voter_count"] for h in household_rows(db_engine)}
    assert all(counts[h] == per_household.get(h, 0) for h in counts)
    home = {r["household_id"] for r in voter_rows(db_engine)
            if r["external_id"] == target[3].strip(b'"').decode()}.pop()
    assert counts[home] >= 4


# ------------------------------------------------------------------ resume


def _comparable(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """Table contents without ids and timestamps (household by its key)."""
    homes = household_rows(engine)
    keys = {h["id"]: h["address_key"] for h in homes}
    hh = sorted((h["address_key"], h["voter_count"]) for h in homes)
    skip = {"id", "created_at", "updated_at", "household_id", "import_job_id"}
    vs = sorted(
        (tuple((k, json.dumps(v, sort_keys=True, default=str)) for k, v in r.items()
               if k not in skip), keys.get(r["household_id"]))
        for r in voter_rows(engine)
    )
    return [*hh, *vs]


@pytest.mark.parametrize("stop_after", [1, 3])
def test_resume_from_checkpoint_equals_clean_run(db_engine: sa.Engine, stop_after: int,
                                                 tmp_path: Any) -> None:
    gen = generate("nc_statewide", 700, seed=21)
    run = create(db_engine, gen.data)
    drive(db_engine, run, batch_size=100, max_batches=stop_after)
    assert not run.done and run.checkpoint is not None
    stored = json.loads(json.dumps(run.checkpoint))  # what the job row keeps
    run.checkpoint = stored
    drive(db_engine, run, batch_size=100)  # a new worker: fresh context and cache
    assert run.done and run.processed == gen.rows
    resumed = _comparable(db_engine)

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    upgrade(clean_url)
    clean = make_engine(clean_url)
    try:
        import_file(clean, gen.data, batch_size=100)
        assert resumed == _comparable(clean)
    finally:
        clean.dispose()


# ------------------------------------------------------------------ validation


def test_validate_rejects_unknown_format_and_mode(db_engine: sa.Engine) -> None:
    data = generate("simple_csv", 5).data
    with pytest.raises(JobValidationError) as bad_format:
        create(db_engine, data, fmt="florida")
    assert bad_format.value.status == 422 and bad_format.value.code == "unknown_format"
    assert "nc_statewide" in bad_format.value.message
    with pytest.raises(JobValidationError) as bad_mode:
        create(db_engine, data, mode="merge")
    assert bad_mode.value.status == 422 and bad_mode.value.code == "invalid_mode"
    assert "incremental" in bad_mode.value.message


def test_validate_rejects_over_the_group_limit(db_engine: sa.Engine) -> None:
    """Over the per-job limit a file is split into a group (tests/engine/test_job_groups.py);
    only the group limit refuses it."""
    gen = generate("nc_statewide", 50, mess_rate=0.0)
    with pytest.raises(JobValidationError) as info:
        create(db_engine, gen.data, settings=Settings(max_items_per_group=49))
    assert info.value.code == "too_many_items" and "50" in info.value.message
    assert "COCOA_MAX_ITEMS_PER_GROUP" in info.value.message
    assert create(db_engine, gen.data, settings=Settings(max_items_per_job=49)).params[
        "rows"] == 50
    assert create(db_engine, gen.data, settings=Settings(max_items_per_group=50)).params[
        "rows"] == 50


def test_split_ranges_cover_every_row_once(db_engine: sa.Engine) -> None:
    """The children's ranges, driven one after another, read every row once."""
    gen = generate("nc_statewide", 95, mess_rate=0.05)
    run = create(db_engine, gen.data)
    with db_engine.begin() as conn:
        parts = JOB.split(CreateContext(conn=conn, job_id=run.job_id, params=run.params,
                                        settings=Settings(), upload=io.BytesIO(gen.data)),
                          run.params, 40)
    assert parts is not None and [(p.first_item, p.last_item) for p in parts] == [
        (1, 40), (41, 80), (81, 95)]
    read = [drive(db_engine, Run(f"{run.job_id[:30]}-{i}", p.params, gen.data), batch_size=7)
            for i, p in enumerate(parts)]
    assert [r.processed for r in read] == [40, 40, 15] and all(r.done for r in read)
    rows = [int(e.item_ref.split()[-1]) for r in read for e in r.errors]
    assert len(rows) == len(set(rows))  # no row reported twice
    with db_engine.begin() as conn:
        assert JOB.split(CreateContext(conn=conn, job_id=run.job_id, params=run.params,
                                       settings=Settings(), upload=io.BytesIO(gen.data)),
                         run.params, 95) is None


def test_explicit_format_missing_columns(db_engine: sa.Engine) -> None:
    data = generate("simple_csv", 5).data
    with pytest.raises(JobValidationError) as info:
        create(db_engine, data, fmt="nc_statewide")
    assert info.value.code == "missing_columns" and "ncid" in info.value.message


# ------------------------------------------------------------------ through the real engine


def test_a_worker_readies_the_helper_server_only_for_types_that_use_helpers(
        db_engine: sa.Engine) -> None:
    from cocoa.jobs.manager import JobManager
    from cocoa.jobs.worker import Worker

    manager = JobManager(db_engine, Settings())
    assert Worker(manager)._helper_modules() == ["cocoa.jobtypes.import_voters.job"]
    assert Worker(manager, types=["import_voters"])._helper_modules() == [
        "cocoa.jobtypes.import_voters.job"]
    assert Worker(manager, types=["geocode_households", "parcel_import"])._helper_modules() == []
    assert Worker(manager, types=["no_such_type"])._helper_modules() == []


def test_runs_to_completion_under_the_real_engine(db_engine: sa.Engine) -> None:
    """Create through the JobManager (upload stored as blobs), run with a Worker."""
    from cocoa.jobs.manager import JobManager, UploadSource
    from cocoa.jobs.worker import Worker

    gen = generate("nc_statewide", 450, seed=6)
    manager = JobManager(db_engine, Settings(batch_size=100, upload_chunk_bytes=4096))
    job = manager.create("import_voters", {"format": "auto", "mode": "full"},
                         created_by="tester",
                         upload=UploadSource(io.BytesIO(gen.data), "nc.txt", "text/plain"))
    worker = Worker(manager, worker_id="voters-test")
    worker._claim_available()  # runs the claimed job in its thread ...
    worker._drain()  # ... and waits for it: no polling, no sleeps

    done = manager.get(job.id)
    assert done.status.value == "completed", done.error
    assert done.processed == gen.rows and done.failed == len(gen.errors)
    assert done.result["voters_created"] == len(gen.households)
    assert done.result["layout"] == "nc_statewide"
    assert done.error_count == len(gen.errors) + len(gen.warnings)
    assert len(voter_rows(db_engine)) == len(gen.households)


def test_awkward_text_round_trips_through_both_backends(db_engine: sa.Engine) -> None:
    """Backslashes, ``\\N``, quotes, tabs and carriage returns inside quoted
    fields, non-ASCII and HTML survive COPY text / JSON intact (PostgreSQL
    receives every row as COPY text, where several of these mean something)."""
    header = "first_name,last_name,email,address,city,state,zip"
    rows = [r'C:\temp,\N,a@x,1 OAK ST,DURHAM,NC,27701',
            '"say ""hi""",ZOË <b>x</b>,b@x,2 OAK ST,DURHAM,NC,27701',
            "\u00a0SPACE,O’NEIL,c@x,3 OAK ST,DURHAM,NC,27701",
            '"BO\tB","O\rNEIL",d@x,4 OAK ST\\,DURHAM,NC,27701']
    data = ("\n".join([header, *rows]) + "\n").encode()
    import_file(db_engine, data)
    got = {r["email"]: r for r in voter_rows(db_engine)}
    assert got["d@x"]["record"] == {"first_name": "BO\tB", "last_name": "O\rNEIL",
                                    "email": "d@x", "address": "4 OAK ST\\",
                                    "city": "DURHAM", "state": "NC", "zip": "27701"}
    assert import_file(db_engine, data).result["voters_unchanged"] == 4
    assert (got["a@x"]["first_name"], got["a@x"]["last_name"]) == ("C:\\temp", "\\N")
    assert got["a@x"]["record"]["last_name"] == "\\N"
    assert got["b@x"]["first_name"] == 'say "hi"'
    assert got["b@x"]["record"]["last_name"] == "ZOË <b>x</b>"
    assert got["c@x"]["record"]["first_name"] == "\u00a0SPACE"
    assert got["c@x"]["last_name"] == "O’NEIL"


def batches_of(run: Run, engine: sa.Engine, settings: Settings,
               batch_size: int = 300) -> tuple[list[Any], RunContext]:
    """Every batch ``run_batch`` gives for the whole file, without writing."""
    ctx = run_context(run, engine, settings, batch_size)
    out, checkpoint, done = [], None, False
    while not done:
        batch = JOB.run_batch(ctx, checkpoint)
        out.append((batch.checkpoint, batch.processed, batch.failed, batch.counts, batch.errors,
                    (batch.write.voters, batch.write.homes) if batch.write else None))  # type: ignore[attr-defined]
        checkpoint, done = batch.checkpoint, batch.done
    ctx.close()
    return out, ctx


def run_context(run: Run, engine: sa.Engine, settings: Settings, batch_size: int) -> RunContext:
    return RunContext(job_id=run.job_id, params=run.params, settings=settings, engine=engine,
                      batch_size=batch_size, upload_id=None, result={},
                      open_upload=lambda: io.BytesIO(run.data))


IN_WORKER, IN_HELPER = Settings(parse_ahead_min_rows=10**9), Settings(parse_ahead_min_rows=0)


@pytest.mark.parametrize("helpers", [1, 2])
def test_parsing_in_a_helper_process_gives_the_same_batches(db_engine: sa.Engine,
                                                             helpers: int) -> None:
    """A large file is parsed by helper processes while the worker writes:
    every batch (checkpoint, counts, item errors, voters and households to
    write) is the one the worker would have parsed itself, in file order."""
    gen = generate("nc_statewide", 2500, seed=8)
    run = create(db_engine, gen.data)
    here, _ = batches_of(run, db_engine, IN_WORKER)
    ahead, ctx = batches_of(run, db_engine, Settings(parse_ahead_min_rows=0,
                                                     parse_helpers=helpers))
    helper = ctx.cache[iv.AHEAD]
    assert isinstance(helper, Pipeline) and helper.taken == len(here)
    assert sum(b[2] for b in here) > 0  # the generated mess gives item errors
    assert sum(b[3]["rows_superseded"] for b in here) > 0  # and repeated ids
    assert ahead == here


def rest_of(ctx: RunContext, after: Batch) -> list[Any]:
    """The batches after ``after`` (checkpoint, rows, errors, what to write),
    parsed but not written; the run context is closed at the end."""
    rest, checkpoint, done = [], after.checkpoint, after.done
    while not done:
        batch = JOB.run_batch(ctx, checkpoint)
        rest.append((batch.checkpoint, batch.processed, batch.errors,
                     (batch.write.voters, batch.write.homes)))  # type: ignore[attr-defined]
        checkpoint, done = batch.checkpoint, batch.done
    ctx.close()
    return rest


def test_a_helper_that_dies_leaves_the_run_to_the_worker(db_engine: sa.Engine) -> None:
    """A killed helper (the out-of-memory killer, say) costs nothing but
    speed: the batch is parsed in the worker, and no new helper is started."""
    gen = generate("nc_statewide", 2000, seed=9)
    run = create(db_engine, gen.data)
    expected, _ = batches_of(run, db_engine, IN_WORKER)
    ctx = run_context(run, db_engine, IN_HELPER, 300)
    first = JOB.run_batch(ctx, None)
    helper = ctx.cache[iv.AHEAD]
    second = JOB.run_batch(ctx, first.checkpoint)  # both parsed by the helper
    assert helper.taken == 2
    for pid in helper_processes(os.getpid()):
        os.kill(pid, signal.SIGKILL)
    rest = rest_of(ctx, second)
    assert helper.failed and ctx.cache[iv.AHEAD] is helper and helper.taken == 2
    assert rest == [(b[0], b[1], b[4], b[5]) for b in expected[2:]]


def test_a_helper_killed_with_batches_in_flight_leaves_the_run_to_the_worker(
        db_engine: sa.Engine) -> None:
    """Killed while it parses or sends the batches after the first (it may
    leave half a message in the pipe), the helper's end of the pipe closes:
    the worker sees that and parses the rest itself. A worker that kept a
    copy of that end (``ProcessPoolExecutor`` does) would wait forever."""
    gen = generate("nc_statewide", 2000, seed=12)
    run = create(db_engine, gen.data)
    expected, _ = batches_of(run, db_engine, IN_WORKER)
    ctx = run_context(run, db_engine, IN_HELPER, 300)
    first = JOB.run_batch(ctx, None)
    ahead = ctx.cache[iv.AHEAD]
    [helper] = ahead._helpers
    os.kill(helper.process.pid, signal.SIGKILL)
    rest = rest_of(ctx, first)
    assert ahead.failed and ahead.taken >= 1  # batch 2, parsed and sent before the kill, or not
    assert rest == [(b[0], b[1], b[4], b[5]) for b in expected[1:]]


def test_helpers_that_cannot_start_leave_the_parse_to_the_worker(
        db_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """No helper processes (no fork server, say) costs speed, not the import."""
    gen = generate("nc_statewide", 1200, seed=11)
    run = create(db_engine, gen.data)
    expected, _ = batches_of(run, db_engine, IN_WORKER)

    def cannot_start(*_: object) -> None:
        raise OSError("no fork server here")

    monkeypatch.setattr(Pipeline, "__init__", cannot_start)
    got, ctx = batches_of(run, db_engine, IN_HELPER)
    assert iv.AHEAD not in ctx.cache
    assert got == expected


def test_a_helper_ahead_of_another_checkpoint_is_not_used(db_engine: sa.Engine) -> None:
    """Asked for a batch it is not at, the helper is pointed at the batches
    after it; the batch itself is parsed in the worker."""
    gen = generate("nc_statewide", 1500, seed=10)
    run = create(db_engine, gen.data)
    expected, _ = batches_of(run, db_engine, IN_WORKER)
    ctx = run_context(run, db_engine, IN_HELPER, 300)
    JOB.run_batch(ctx, None)
    helper = ctx.cache[iv.AHEAD]
    assert helper.taken == 1  # the first batch too: parsed while the worker found repeated ids
    again = JOB.run_batch(ctx, None)  # the first batch again: the helper is past it
    assert helper.taken == 1
    assert (again.checkpoint, again.errors,
            (again.write.voters, again.write.homes)) == (  # type: ignore[union-attr]
        expected[0][0], expected[0][4], expected[0][5])
    second = JOB.run_batch(ctx, again.checkpoint)
    assert helper.taken == 2 and ctx.cache[iv.AHEAD] is helper
    assert (second.checkpoint, second.errors,
            (second.write.voters, second.write.homes)) == (  # type: ignore[union-attr]
        expected[1][0], expected[1][4], expected[1][5])
    ctx.close()


def test_a_write_between_validation_and_storing_does_not_refuse_the_upload(db_engine: sa.Engine,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation reads a saved mapping; if anyone writes before the upload is
    stored, SQLite would refuse a deferred transaction's first write at once
    ("database is locked", a 503) - seen in CI. The writes wait their turn."""
    from cocoa.jobs import groups
    from cocoa.jobs.manager import JobManager, UploadSource
    from cocoa.jobtypes.import_voters.saved_mappings import save_mapping

    mapping = {"first_name": "Given", "last_name": "Family", "street": "Residence", "city": "Town",
               "zip": "Postcode", "voter_id": "Ref"}
    save_mapping(db_engine, "odd", mapping, "tester")
    other = make_engine(db_engine.url.render_as_string(hide_password=False))
    real_parts_for = groups.parts_for

    def parts_for_while_someone_writes(*args: Any, **kwargs: Any) -> Any:
        save_mapping(other, f"other-{uuid.uuid4().hex[:6]}", mapping, "someone else")  # commits now
        return real_parts_for(*args, **kwargs)

    monkeypatch.setattr(groups, "parts_for", parts_for_while_someone_writes)
    data = b"Given,Family,Residence,Town,Postcode,Ref\nAnn,Lee,5 Elm St,Durham,27701,R1\n"
    job = JobManager(db_engine, Settings()).create(
        "import_voters", {"mapping": "odd"}, created_by="tester",
        upload=UploadSource(io.BytesIO(data), "odd.csv", "text/csv"))
    assert job.status.value == "pending" and job.params["mapping"]["voter_id"] == "Ref"
    other.dispose()
