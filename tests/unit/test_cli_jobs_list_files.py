"""``cocoa jobs list`` tells jobs apart (issue 17, item 5): each job's file
(name, size, compression, layout), item-error count and failure message;
``cocoa jobs rejected`` writes the rejected rows' CSV (item 4) - against the
local database on SQLite and PostgreSQL (tests/api/test_api_rejected_rows.py
runs both against a server)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cocoa.cli.common import console
from cocoa.cli.main import app
from cocoa.db.tables import job_errors, jobs
from cocoa.jobs.client import UploadSource
from cocoa.jobs.manager import JobManager
from cocoa.jobs.model import utcnow

VOTERS = (b"SOS_VOTERID,LAST_NAME,FIRST_NAME,RESIDENTIAL_ADDRESS1,RESIDENTIAL_CITY,RESIDENTIAL_STATE,"
          b"RESIDENTIAL_ZIP\r\nOH1,SMITH,ANN,1 MAIN ST,DURHAM,OH,43001\r\n")
FAILURE = ("The uploaded file is no longer readable: its blob was purged by retention before the "
           "job ran; upload it again.")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console wide enough that the table's cells are not wrapped (``local_db`` is in conftest.py)."""
    monkeypatch.setattr(console, "width", 250)


def test_list_shows_file_errors_and_failure(local_db: JobManager) -> None:
    upload = UploadSource(io.BytesIO(VOTERS), "franklin county.csv", "text/csv")
    voters = local_db.create("import_voters", {"format": "auto"}, created_by="cli-test", upload=upload)
    failed = local_db.create("noop", {"items": 1}, created_by="cli-test")
    with local_db.engine.begin() as conn:  # as a worker leaves a job that failed after 3 item errors
        conn.execute(jobs.update().where(jobs.c.id == failed.id).values(
            status="failed", error=FAILURE, error_count=3))
    runner = CliRunner()

    listed = runner.invoke(app, ["jobs", "list", "--all"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    header = next(line for line in lines if "status" in line and "file" in line)
    assert "failure" in header
    voter_line = next(line for line in lines if voters.id[:8] in line)
    assert f"franklin county.csv ({len(VOTERS):,} B, oh_swvf)" in voter_line
    failed_line = next(line for line in lines if failed.id[:8] in line)
    assert " 3 " in failed_line and FAILURE[:40] in failed_line and FAILURE not in failed_line  # cut short

    as_json = json.loads(runner.invoke(app, ["jobs", "list", "--all", "--json"]).output)
    found = {job["id"]: job for job in as_json["jobs"]}
    assert found[voters.id]["input"] == {"filename": "franklin county.csv", "bytes": len(VOTERS),
                                         "compressed": None, "layout": "oh_swvf"}
    assert found[failed.id]["input"] is None and found[failed.id]["error"] == FAILURE


def test_rejected_rows_to_a_file(local_db: JobManager, tmp_path: Path) -> None:
    upload = UploadSource(io.BytesIO(VOTERS), "county.csv", "text/csv")
    job = local_db.create("import_voters", {"format": "auto"}, created_by="cli-test", upload=upload)
    rows = [  # as an import records them: a rejected row keeps its line, a warning none
        {"item_ref": "row 3", "item_index": 3, "severity": "error", "code": "ragged_row",
         "message": "row 3: has 2 fields but the header has 7", "original": "OH3,\"JONES, JR\""},
        {"item_ref": "row 4", "item_index": 4, "severity": "warning", "code": "bad_date",
         "message": "row 4: bad date", "original": None},
        {"item_ref": "row 5", "item_index": 5, "severity": "error", "code": "missing_id",
         "message": "row 5: no id", "original": "=cmd|' /C calc'!A0,SMITH"},
    ]
    with local_db.engine.begin() as conn:
        conn.execute(job_errors.insert(), [{**row, "job_id": job.id, "created_at": utcnow()} for row in rows])
    runner = CliRunner()
    target = tmp_path / "rejected.csv"

    written = runner.invoke(app, ["jobs", "rejected", job.id[:8], "-o", str(target)])
    assert written.exit_code == 0, written.output
    found = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    assert [(r["row"], r["code"], r["original_line"]) for r in found] == [
        ("3", "ragged_row", 'OH3,"JONES, JR"'), ("5", "missing_id", "'=cmd|' /C calc'!A0,SMITH")]

    everything = runner.invoke(app, ["jobs", "rejected", job.id, "--warnings"])
    assert [r["severity"] for r in csv.DictReader(io.StringIO(everything.stdout, newline=""))] == [
        "error", "warning", "error"]
    assert runner.invoke(app, ["jobs", "rejected", "ffffff0000"]).exit_code == 4  # no such job
