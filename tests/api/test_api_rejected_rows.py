"""Issue 17, items 4 and 5 over real HTTP on both backends.

* ``GET /jobs/{id}/errors.csv``: every item error with the original line of
  each rejected row - and the round trip it exists for: import a file with
  bad rows, download the CSV, fix those lines, re-import just them in
  incremental mode, and they land.
* ``input: {filename, bytes, compressed, layout}`` in the job object and in
  the listing, with the failure message and item-error count.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from api_helpers import assert_error, manager_for, wait_status
from typer.testing import CliRunner

from cocoa.cli.main import app
from cocoa.db.tables import jobs
from cocoa.samples.sample_set import build

VOTERS = "/api/v1/voters/import"
PARCELS = "/api/v1/gis/parcels/import"
HEADER = ("SOS_VOTERID,LAST_NAME,FIRST_NAME,DATE_OF_BIRTH,RESIDENTIAL_ADDRESS1,RESIDENTIAL_CITY,"
          "RESIDENTIAL_STATE,RESIDENTIAL_ZIP")


def _file(tag: str) -> tuple[str, dict[str, str]]:
    """A small Ohio file: two good rows, two rejected rows a person can fix
    (a row missing its ZIP field, a row missing its voter id) and one whose
    line starts like a spreadsheet formula. Returns the text and the bad lines."""
    bad = {
        "ragged": f"{tag}-2,ZULU{tag},BOB,1970-05-06,2 MAIN ST,DURHAM,OH",
        "missing_id": f",ZULU{tag},CAROL,1975-07-08,3 MAIN ST,DURHAM,OH,43001",
        "formula": f"=HYPERLINK(\"http://x\"),ZULU{tag}",
    }
    lines = [HEADER, f"{tag}-1,ZULU{tag},ANN,1980-01-02,1 MAIN ST,DURHAM,OH,43001",
             bad["ragged"], bad["missing_id"], bad["formula"],
             f"{tag}-5,ZULU{tag},DAN,1990-03-04,5 MAIN ST,DURHAM,OH,43001"]
    return "\r\n".join(lines) + "\r\n", bad


def _import(admin: httpx.Client, name: str, body: bytes, mode: str = "full") -> dict[str, Any]:
    response = admin.post(VOTERS, files={"file": (name, body, "text/csv")},
                          data={"format": "auto", "mode": mode})
    assert response.status_code == 202, response.text
    return wait_status(admin, response.json()["job_id"], "completed", "failed")


def _csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["x-content-type-options"] == "nosniff"
    text = response.content.decode("utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert reader.fieldnames == ["row", "item", "severity", "code", "message", "original_line"]
    return list(reader)


def _voter_ids(client: httpx.Client, tag: str) -> set[str]:
    found = client.get("/api/v1/voters", params={"q": f"ZULU{tag}", "limit": 50})
    assert found.status_code == 200, found.text
    return {v["external_id"] for v in found.json()["voters"]}


def test_rejected_rows_round_trip(module_server: Any) -> None:
    """Import with bad rows, download errors.csv, fix the lines, re-import only them.

    Re-importing a few rows never touches the other voters in either mode
    (``full`` inserts and updates, it does not delete); the rows land with
    ``full``, as ``incremental`` skips voters that are not stored yet."""
    tag = uuid.uuid4().hex[:8].upper()
    text, bad = _file(tag)
    with module_server.client() as admin, module_server.client(module_server.viewer_token) as viewer:
        job = _import(admin, f"county-{tag}.csv", text.encode())
        assert job["status"] == "completed", job
        assert _voter_ids(viewer, tag) == {f"{tag}-1", f"{tag}-5"}

        rows = _csv_rows(viewer.get(f"/api/v1/jobs/{job['id']}/errors.csv"))  # viewer may read it
        rejected = [r for r in rows if r["severity"] == "error"]
        assert [int(r["row"]) for r in rejected] == [3, 4, 5]
        by_row = {int(r["row"]): r for r in rejected}
        # The exact text of each line, decoded, without its line break.
        assert by_row[3]["original_line"] == bad["ragged"] and by_row[3]["code"] == "ragged_row"
        assert by_row[4]["original_line"] == bad["missing_id"] and by_row[4]["code"] == "missing_id"
        assert by_row[3]["item"] == "row 3" and "fields" in by_row[3]["message"]
        # CSV injection: a cell that starts like a formula is shown as text.
        assert by_row[5]["original_line"] == "'" + bad["formula"]
        assert all(r["original_line"] == "" for r in rows if r["severity"] == "warning")

        # The CLI hands out the same file (here from the server, as a viewer, by id prefix).
        cli = CliRunner().invoke(app, ["jobs", "rejected", job["id"][:8], "--url", module_server.url,
                                       "--token", module_server.viewer_token])
        assert cli.exit_code == 0, cli.output
        assert list(csv.DictReader(io.StringIO(cli.stdout, newline=""))) == rejected

        # The user fixes the two fixable lines and imports just them. Not in
        # mode=incremental: that only updates voters already in the database
        # (docs/guides.md), and a rejected row's voter never got there.
        fixed = [by_row[3]["original_line"] + ",43001",
                 by_row[4]["original_line"].replace(",", f"{tag}-3,", 1)]
        fixed_file = ("\r\n".join([HEADER, *fixed]) + "\r\n").encode()
        skipped = _import(admin, f"fixed-{tag}.csv", fixed_file, mode="incremental")
        assert skipped["result"]["voters_skipped"] == 2 and skipped["error_count"] == 0, skipped
        assert _voter_ids(viewer, tag) == {f"{tag}-1", f"{tag}-5"}
        again = _import(admin, f"fixed-{tag}.csv", fixed_file, mode="full")
        assert again["status"] == "completed" and again["error_count"] == 0, again
        assert again["result"]["voters_created"] == 2 and again["result"].get("voters_updated", 0) == 0
        # They landed next to the rows of the first import, which stay as they were.
        assert _voter_ids(viewer, tag) == {f"{tag}-1", f"{tag}-2", f"{tag}-3", f"{tag}-5"}
        only_errors = _csv_rows(viewer.get(f"/api/v1/jobs/{job['id']}/errors.csv",
                                           params={"severity": "error"}))
        assert [r["row"] for r in only_errors] == ["3", "4", "5"]
        assert _csv_rows(viewer.get(f"/api/v1/jobs/{again['id']}/errors.csv")) == []


def test_errors_csv_refusals(module_server: Any) -> None:
    with module_server.client() as admin, httpx.Client(base_url=module_server.url) as anonymous:
        missing = f"/api/v1/jobs/{uuid.uuid4()}/errors.csv"
        assert_error(anonymous.get(missing), 401)
        assert_error(admin.get(missing), 404, "job_not_found")
        wrong = assert_error(admin.get(missing, params={"severity": "fatal"}), 422)
        assert "severity" in json.dumps(wrong)

def test_job_input_in_object_and_listing(module_server: Any) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    text, _ = _file(tag)
    body = text.encode()
    name = f"franklin-{tag}.csv"
    with module_server.client() as admin, module_server.client(module_server.viewer_token) as viewer:
        job = _import(admin, name, body)
        expected = {"filename": name, "bytes": len(body), "compressed": None, "layout": "oh_swvf"}
        assert job["input"] == expected
        listed = {j["id"]: j for j in viewer.get("/api/v1/jobs", params={"limit": 200}).json()["jobs"]}
        assert listed[job["id"]]["input"] == expected
        assert listed[job["id"]]["error_count"] == job["error_count"] >= 3



def test_parcel_zip_input_and_rejected_features(module_server: Any) -> None:
    """A zipped shapefile is ``compressed: "zip"``; a rejected feature's
    original is its properties as JSON (its geometry is left out)."""
    sample = next(p for p in build().parcels if p.name == "parcels.zip")
    with module_server.client() as admin:
        response = admin.post(PARCELS, files={"file": ("Wake parcels.zip", sample.data, "application/zip")},
                              data={"source": f"wake-{uuid.uuid4().hex[:8]}"})
        assert response.status_code == 202, response.text
        job = wait_status(admin, response.json()["job_id"], "completed", "failed")
        assert job["status"] == "completed", job
        assert job["input"] == {"filename": "Wake parcels.zip", "bytes": len(sample.data),
                                "compressed": "zip", "layout": job["params"]["format"]}
        rows = _csv_rows(admin.get(f"/api/v1/jobs/{job['id']}/errors.csv", params={"severity": "error"}))
        assert rows and all(r["severity"] == "error" for r in rows)
        properties = json.loads(rows[0]["original_line"])
        assert isinstance(properties, dict) and rows[0]["item"].startswith("feature")


def test_a_retry_describes_the_same_file(module_server: Any, tmp_path: Path) -> None:
    """A retry reads the stored upload again: same name, size and layout."""
    tag = uuid.uuid4().hex[:8].upper()
    text, _ = _file(tag)
    with module_server.client() as admin:
        job = _import(admin, f"retry-{tag}.csv", text.encode())
        manager = manager_for(module_server, tmp_path)
        try:  # finished, so no worker touches it again: made to look failed, then retried
            with manager.engine.begin() as conn:
                conn.execute(jobs.update().where(jobs.c.id == job["id"]).values(status="failed", error="x"))
        finally:
            manager.engine.dispose()
        retried = admin.post(f"/api/v1/jobs/{job['id']}/retry")
        assert retried.status_code == 202, retried.text
        new = wait_status(admin, retried.headers["location"].rsplit("/", 1)[1], "completed", "failed")
        assert new["retry_of"] == job["id"]
        assert new["input"] == job["input"] == {
            "filename": f"retry-{tag}.csv", "bytes": len(text.encode()), "compressed": None, "layout": "oh_swvf"}
