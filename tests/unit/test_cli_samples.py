"""``cocoa samples DIR`` (issue 21, item 2): the files the docs upload.

Written by the real command into a newcomer's folder, they must be the names
the README and ``docs/`` use, refuse to overwrite without ``--force``, and
each must import through the real path (``cocoa import ... --watch`` with a
``cocoa worker`` process) with exactly the item errors its README.txt lists.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.cli_helpers import Newcomer, newcomer

from cocoa.config import Settings
from cocoa.db.engine import make_engine
from cocoa.jobs.manager import JobManager
from cocoa.samples.sample_set import COUNTY_MAPPING

REPO = Path(__file__).resolve().parents[2]
VOTER_FILES = ("ncvoter92.txt", "SWVF_1_22.txt", "contra_costa_voters.txt", "voters.txt")
PARCEL_FILES = ("parcels.zip", "wake_parcels.gpkg", "county.geojson", "parcels.csv")
VENDOR_FILE = "vendor.csv"  # a vendor export (issue 17): not an official layout
ZIPPED_FILE = "ncvoter_Statewide.zip"  # ncvoter92.txt zipped, as the state publishes it (issue 17)
DOCS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))


def test_the_files_the_docs_upload_are_the_files_samples_writes(tmp_path: Path) -> None:
    user = newcomer(tmp_path)
    run = user.run("samples", "town")
    assert run.returncode == 0, run.stderr
    written = sorted(p.name for p in (user.cwd / "town").iterdir())
    assert written == sorted([*VOTER_FILES, *PARCEL_FILES, VENDOR_FILE, ZIPPED_FILE, "README.txt"])
    readme = (user.cwd / "town" / "README.txt").read_text()
    for name in (*VOTER_FILES, *PARCEL_FILES, VENDOR_FILE, ZIPPED_FILE):
        assert f"\n{name}  (" in readme, name
    uploaded, made_by_docs = set(), set()
    for doc in DOCS:
        text = doc.read_text()
        uploaded |= set(re.findall(r"file=@([\w-]+\.[\w.]+)", text))
        uploaded |= set(re.findall(r"cocoa import (?:voters|parcels) ([\w-]+\.[\w.]+)", text))
        made_by_docs |= set(re.findall(r"> ([\w-]+\.[\w.]+)", text))  # a file an example writes itself
    uploaded -= made_by_docs
    assert uploaded, "the docs upload no files?"
    assert uploaded <= set(written), uploaded - set(written)
    assert {"voters.txt", "ncvoter92.txt", "parcels.zip", "wake_parcels.gpkg"} <= uploaded


def test_existing_files_are_kept_unless_forced(tmp_path: Path) -> None:
    user = newcomer(tmp_path)
    folder = user.cwd / "town"
    folder.mkdir()
    mine = folder / "voters.txt"
    mine.write_text("my own list\n")
    refused = user.run("samples", "town")
    assert refused.returncode == 7
    message = " ".join(refused.stderr.split())
    assert "voters.txt" in message and "--force" in message and "nothing was written" in message
    assert mine.read_text() == "my own list\n" and sorted(folder.iterdir()) == [mine]
    forced = user.run("samples", "town", "--force")
    assert forced.returncode == 0, forced.stderr
    assert mine.read_text().startswith("first_name,last_name,")
    assert len(list(folder.iterdir())) == 11


@pytest.fixture
def town(tmp_path: Path) -> Iterator[tuple[Newcomer, JobManager]]:
    """A newcomer after ``cocoa quickstart`` and ``cocoa samples .``, with a worker running."""
    user = newcomer(tmp_path)
    assert user.run("quickstart", "--no-demo").returncode == 0
    assert user.run("samples", ".").returncode == 0
    worker = user.popen("worker", log=tmp_path / "worker.log", COCOA_POLL_SECONDS="0.1")
    url = f"sqlite:///{user.data_dir / 'cocoa.db'}"
    manager = JobManager(make_engine(url), Settings(database_url=url, data_dir=user.data_dir))
    try:
        yield user, manager
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            assert worker.wait(timeout=60) == 0
        except subprocess.TimeoutExpired:
            worker.kill()
        manager.engine.dispose()


def _import(user: Newcomer, manager: JobManager, *args: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Run one import to completion; its result and its errors (item -> code)."""
    run = user.run("import", *args, "--watch")
    assert run.returncode == 0, run.stdout + run.stderr  # exits 0 only when the job completed
    job_id = re.search(r"Created job (\S+) ", run.stdout)
    assert job_id, run.stdout
    job = manager.get(job_id.group(1))
    errors, total = manager.errors(job.id, limit=100)
    assert total == len(errors)
    return job.result, {e["item"]: e["code"] for e in errors}


def test_every_voter_sample_imports_with_the_problems_its_readme_lists(
        town: tuple[Newcomer, JobManager]) -> None:
    user, manager = town
    readme = (user.cwd / "README.txt").read_text()
    for name in VOTER_FILES:
        result, errors = _import(user, manager, "voters", name)
        listed = readme.split(f"\n{name}  (")[1].split("\n\n")[0]
        expected = {f"row {line}": code for line, code in re.findall(r"line (\d+): (\w+) \(", listed)}
        assert errors == expected, (name, errors, listed)
        assert errors["row 6"] == "ragged_row" and errors["row 8"] == "address_unplaced"
        assert ("row 4" in errors) is (name != "voters.txt")  # the simple list has no dates
        assert result["rows_superseded"] == 1, (name, result)  # the repeated voter: the later row wins
        assert result["voters_created"] == result["rows_read"] - 2  # less the ragged row and the repeat


def test_every_parcel_sample_imports_with_its_empty_geometry_and_repeated_apn(
        town: tuple[Newcomer, JobManager]) -> None:
    user, manager = town
    for name in PARCEL_FILES:
        extra = ["--mapping", json.dumps(COUNTY_MAPPING)] if name == "county.geojson" else []
        result, errors = _import(user, manager, "parcels", name, *extra)
        assert errors == {"feature 1": "empty_geometry", "feature 60": "duplicate_apn"}, (name, errors)
        assert result["parcels_imported"] + result["parcels_updated"] == 58, (name, result)
        assert result["parcels_repaired"] == 4


def test_the_vendor_sample_previews_then_imports_without_merging_namesakes(
        town: tuple[Newcomer, JobManager]) -> None:
    user, manager = town
    shown = user.run("import", "voters", VENDOR_FILE, "--preview")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    out = " ".join(shown.stdout.split())
    assert "simple_csv" in out and "Voter ID" in out and "Apt" in out and "Nothing was imported" in out
    assert manager.list_jobs(type_name="import_voters", limit=1)[1] == 0, "a preview created a job"
    mapped = json.dumps({"voter_id": "Voter ID", "unit": "Apt"})
    result, errors = _import(user, manager, "voters", VENDOR_FILE, "--mapping", mapped)
    assert errors == {}
    readme = (user.cwd / "README.txt").read_text()
    rows = int(re.search(r"vendor.csv  \(a vendor export, (\d+) data rows\)", readme).group(1))
    assert result["rows_superseded"] == 0 and result["voters_created"] == rows
    bad = user.run("import", "voters", VENDOR_FILE, "--preview", "--mapping", '{"street": "Road"}')
    assert bad.returncode == 6 and "'Road'" in bad.stderr
