"""The quickstart demo town: one coherent place through all three job types.

Run on a fresh SQLite database exactly as ``cocoa quickstart`` does: the real
engine, an in-process worker, the offline geocoder. The town must come out
linked and geocoded (that is what the demo is for), and a second run - the
next ``make run`` - must not load it again.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console
from tests.conftest import REPO, migrated_manager

from cocoa.db.engine import make_engine
from cocoa.db.tables import households, jobs, voters
from cocoa.jobs.manager import JobManager
from cocoa.jobs.model import Status
from cocoa.samples.demo import DEMO_TYPES, DEMO_USER, build_town, load_demo


@pytest.fixture
def manager(sqlite_url: str) -> Iterator[JobManager]:
    m = migrated_manager(sqlite_url)
    yield m
    m.dispose()


def count(engine: sa.Engine, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def test_demo_town_is_linked_geocoded_and_loaded_once(manager: JobManager) -> None:
    out = io.StringIO()
    load_demo(manager, Console(file=out, width=200))

    demo_jobs, total = manager.list_jobs()
    assert total == 3
    assert sorted(j.type for j in demo_jobs) == sorted(DEMO_TYPES)
    for job in demo_jobs:
        assert job.status is Status.COMPLETED, (job.type, job.error)
        assert job.created_by == DEMO_USER
    engine = manager.engine
    homes = count(engine, households)
    assert count(engine, voters) > 500 and homes > 250
    assert count(engine, households, households.c.parcel_id.is_not(None)) > 0.8 * homes
    assert count(engine, households, households.c.geocode_status == "matched") > 0.8 * homes
    text = out.getvalue()
    assert all(t in text for t in DEMO_TYPES), text

    again = io.StringIO()
    load_demo(manager, Console(file=again))
    assert manager.list_jobs()[1] == 3 and again.getvalue() == ""


def test_demo_files_carry_a_little_mess_and_are_reproducible() -> None:
    first, second = build_town(), build_town()
    assert first.voters.data == second.voters.data and first.parcels == second.parcels
    lines = first.voters.data.decode("latin-1").splitlines()
    widths = {line.count("\t") for line in lines}
    assert len(widths) == 2  # the header's width, and the two ragged rows
    assert '"02/30/2019"' in first.voters.data.decode("latin-1")
    assert len(first.town.parcels) == 300 and 500 < first.voters.rows < 800


def test_quickstart_prints_login_and_token_and_lists_the_demo_jobs(tmp_path: Path) -> None:
    """``make run``'s first command, as a real process on a fresh data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCOA_")}
    env["COCOA_DATA_DIR"] = str(tmp_path)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # quickstart records its data dir there
    cocoa = [sys.executable, "-m", "cocoa.cli.main"]
    run = subprocess.run([*cocoa, "quickstart"], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "password" in run.stdout and "API token:  cct_" in run.stdout, run.stdout
    listed = subprocess.run([*cocoa, "jobs", "list", "--json"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count('"created_by": "demo"') == 3
    engine = make_engine(f"sqlite:///{tmp_path / 'cocoa.db'}")
    try:
        assert count(engine, jobs, jobs.c.status == "completed") == 3
    finally:
        engine.dispose()
    rerun = subprocess.run([*cocoa, "quickstart"], env=env, cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0 and "Loading the demo town" not in rerun.stdout
