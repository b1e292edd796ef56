"""Voter import preview, column mappings and saved mappings (issue 17, items 0
and 3) over real HTTP, on both backends."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import httpx
from api_helpers import assert_error, wait_status

from cocoa.samples.vendor_export import generate_vendor

VOTERS = "/api/v1/voters/import"
PREVIEW = "/api/v1/voters/import/preview"
MAPPINGS = "/api/v1/voters/mappings"
ODD = (b"Given,Family,Residence,Flat,Town,Postcode,Ref\n"
       b"Ann,Lee,5 Elm St,2,Durham,27701,R1\nBo,Lee,5 Elm St,3,Durham,27701,R2\n")
ODD_MAPPING = {"first_name": "Given", "last_name": "Family", "street": "Residence",
               "unit": "Flat", "city": "Town", "zip": "Postcode", "voter_id": "Ref"}


def job_count(client: httpx.Client) -> int:
    body = client.get("/api/v1/jobs", params={"limit": 1}).json()
    return int(body.get("total", len(body.get("jobs", body.get("items", [])))))


def upload(data: bytes, name: str = "v.csv") -> dict[str, Any]:
    return {"file": (name, data, "text/csv")}


def finished(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    return wait_status(client, response.json()["job_id"], "completed", "failed")


def test_preview_answers_at_once_and_stores_nothing(module_server: Any) -> None:
    vendor = generate_vendor(30, seed=uuid.uuid4().int % 1000)
    with module_server.client() as admin, module_server.client(module_server.viewer_token) as viewer, \
            httpx.Client(base_url=module_server.url) as anonymous:
        assert_error(anonymous.post(PREVIEW, files=upload(vendor.data)), 401)
        assert_error(viewer.post(PREVIEW, files=upload(vendor.data)), 403, "forbidden")
        before = job_count(admin)
        response = admin.post(PREVIEW, files=upload(vendor.data), data={"format": "auto"})
        assert response.status_code == 200, response.text
        shown = response.json()
        assert job_count(admin) == before
        assert shown["layout"] == "simple_csv" and shown["rows"] == 30 and shown["rows_exact"]
        assert shown["mapping"]["voter_id"] == "Voter ID" and shown["mapping"]["unit"] == "Apt"
        assert len(shown["sample"]) == 20 and shown["sample"][0]["row"] == 2
        assert shown["sample"][0]["household_key"] and shown["problems"] == []
        assert "comma-delimited" in shown["reason"]
        # a gzipped upload is previewed as the import reads it (issue 17, item 1)
        zipped = admin.post(PREVIEW, files=upload(gzip.compress(vendor.data), "v.csv.gz"))
        assert zipped.status_code == 200, zipped.text
        assert zipped.json()["rows"] == 30 and zipped.json()["sample"] == shown["sample"]
        # the same mistakes the import refuses
        assert_error(admin.post(PREVIEW, files=upload(b"first,last,email\nA,B,c@d.org\n")),
                     422, "unmappable_file")
        assert_error(admin.post(PREVIEW, files=upload(vendor.data), data={"fromat": "auto"}),
                     422, "unknown_field")
        assert_error(admin.post(PREVIEW, files=upload(ODD), data={"mapping": '{"street": "Road"}'}),
                     422, "unknown_column")


def test_unmappable_file_is_refused_before_a_job_exists(module_server: Any) -> None:
    with module_server.client() as admin:
        before = job_count(admin)
        error = assert_error(admin.post(VOTERS, files=upload(b"First Name,Last Name,Email\nA,B,c@d.org\n")),
                             422, "unmappable_file")
        assert "First Name, Last Name, Email" in error["message"] and "mapping" in error["message"]
        assert error["details"]["needed"] == ["street"]
        assert job_count(admin) == before


def test_import_with_a_json_mapping(module_server: Any) -> None:
    with module_server.client() as admin:
        shown = admin.post(PREVIEW, files=upload(ODD), data={"mapping": json.dumps(ODD_MAPPING)}).json()
        assert shown["mapping"]["street"] == "Residence"
        assert shown["sample"][0]["household_key"] != shown["sample"][1]["household_key"]
        assert shown["sample"][0]["building_key"] == shown["sample"][1]["building_key"]
        job = finished(admin, admin.post(VOTERS, files=upload(ODD),
                                         data={"mapping": json.dumps(ODD_MAPPING)}))
        assert job["status"] == "completed", job
        assert job["progress"]["succeeded"] == 2 and job["progress"]["failed"] == 0
        bad = assert_error(admin.post(VOTERS, files=upload(ODD), data={"mapping": '{"streeet": "x"}'}),
                           422, "invalid_mapping")
        assert "'streeet'" in bad["message"]
        assert_error(admin.post(VOTERS, files=upload(ODD), data={"mapping": json.dumps(ODD_MAPPING),
                                                                 "format": "nc_statewide"}),
                     422, "mapping_not_supported")


def test_saved_mappings(module_server: Any) -> None:
    name = f"odd-vendor-{uuid.uuid4().hex[:6]}"
    with module_server.client() as admin, module_server.client(module_server.viewer_token) as viewer:
        assert_error(viewer.post(MAPPINGS, json={"name": name, "mapping": ODD_MAPPING}), 403, "forbidden")
        assert_error(admin.post(MAPPINGS, json={"name": "../x", "mapping": ODD_MAPPING}),
                     422, "invalid_mapping_name")
        assert_error(admin.post(MAPPINGS, json={"name": name, "mapping": {"nope": "x"}}),
                     422, "invalid_mapping")
        saved = admin.post(MAPPINGS, json={"name": name, "mapping": ODD_MAPPING})
        assert saved.status_code == 201, saved.text
        listed = viewer.get(MAPPINGS).json()
        assert {"name": name, "mapping": ODD_MAPPING} .items() <= next(
            m for m in listed["mappings"] if m["name"] == name).items()
        assert "street" in listed["fields"]
        shown = admin.post(PREVIEW, files=upload(ODD), data={"mapping": name}).json()
        assert shown["mapping"]["voter_id"] == "Ref"
        job = finished(admin, admin.post(VOTERS, files=upload(ODD), data={"mapping": name}))
        assert job["status"] == "completed" and job["progress"]["succeeded"] == 2, job
        missing = assert_error(admin.post(VOTERS, files=upload(ODD), data={"mapping": "no-such"}),
                               422, "unknown_mapping")
        assert name in missing["message"]


def test_vendor_export_imports_without_merging_namesakes(module_server: Any) -> None:
    vendor = generate_vendor(300, seed=11, first_id=7_000_000 + uuid.uuid4().int % 1_000_000 * 1000)
    assert vendor.shared_name_rows > 100
    with module_server.client() as admin:
        job = finished(admin, admin.post(VOTERS, files=upload(vendor.data), data={"format": "auto"}))
        assert job["status"] == "completed", job
        assert job["progress"]["succeeded"] == vendor.rows and job["progress"]["failed"] == 0
        assert job["result"]["rows_superseded"] == 0  # no namesake merged into another
        homes = admin.get("/api/v1/households", params={"job_id": job["id"], "limit": 1}).json()
        assert homes["total"] == vendor.households  # flats by their Apt column


def test_name_and_address_collisions_are_reported_per_row(module_server: Any) -> None:
    street = f"{uuid.uuid4().int % 9000 + 100} Collision St"
    data = (f"first_name,last_name,address,city,state,zip\n"
            f"John,Smith,{street},Durham,NC,27701\nJohn,Smith,{street},Durham,NC,27701\n"
            f"Jane,Smith,,Durham,NC,27701\n").encode()
    with module_server.client() as admin:
        job = finished(admin, admin.post(VOTERS, files=upload(data)))
        errors = admin.get(f"/api/v1/jobs/{job['id']}/errors").json()
        items = errors["errors"]
        codes = {(e["item"], e["code"]) for e in items}
        assert ("row 2", "same_voter_key") in codes and ("row 4", "missing_address") in codes
        assert job["progress"]["failed"] == 1
