"""Job-creating endpoints: the shared upload machinery (auth, 415, 413, 422)
and the 202 + Location answer, on both backends.

The job types behind the endpoints belong to other modules; the 202 paths use
them when they are registered and skip with a reason otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from api_helpers import SMALL_UPLOAD_LIMIT, assert_error, wait_status

from cocoa.jobs.types import all_job_types

VOTERS = "/api/v1/voters/import"
PARCELS = "/api/v1/gis/parcels/import"
GEOCODE = "/api/v1/jobs/geocoding"
VOTER_CSV = b"first_name,last_name,address,city,state,zip\nAda,Lovelace,1 Main St,Durham,NC,27701\n"


def needs_type(name: str) -> None:
    assert name in all_job_types(), f"job type {name!r} is not registered"


def assert_accepted(response: httpx.Response, type_name: str) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "pending" and body["job"]["id"] == body["job_id"]
    assert body["job"]["status"] in {"pending", "processing", "completed"}  # a worker may be quick
    assert body["job"]["type"] == type_name and body["job"]["created_by"] == "admin"
    assert response.headers["location"] == f"/api/v1/jobs/{body['job_id']}"
    return body


@pytest.mark.parametrize("path", [VOTERS, PARCELS])
def test_upload_machinery_refusals(small_upload_server: Any, path: str) -> None:
    server = small_upload_server
    small = {"file": ("f.csv", b"x" * 10, "text/csv")}
    with server.client() as admin, server.client(server.viewer_token) as viewer, \
            httpx.Client(base_url=server.url) as anonymous:
        assert_error(anonymous.post(path, files=small), 401)
        assert_error(viewer.post(path, files=small), 403, "forbidden")
        assert_error(admin.post(path, json={"file": "x"}), 415, "unsupported_media_type")
        assert_error(admin.post(path, content=b"a=b", headers={"content-type": "text/csv"}), 415)
        missing = assert_error(admin.post(path, files={"other": ("f.csv", b"x")}), 400, "file_required")
        assert "'file'" in missing["message"]
        as_text = assert_error(admin.post(path, data={"file": "not a file part"}, files={"x": ("a", b"")}),
                               400, "file_required")
        assert "file" in as_text["message"]
        # Early: Content-Length alone is far over the limit; the body is never parsed.
        early = admin.post(path, files={"file": ("big.csv", b"x" * (SMALL_UPLOAD_LIMIT + 200_000))})
        assert assert_error(early, 413, "file_too_large")["details"] == {"limit_bytes": SMALL_UPLOAD_LIMIT}
        # Late: within the multipart allowance, but the file itself is over the limit.
        late = admin.post(path, files={"file": ("big.csv", b"x" * (SMALL_UPLOAD_LIMIT + 1))})
        assert_error(late, 413, "file_too_large")


def test_chunked_upload_over_the_limit_is_cut_off(small_upload_server: Any) -> None:
    """No Content-Length: the body is counted as it streams."""
    boundary = "cocoaboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()

    def body() -> Any:
        yield head
        for _ in range(200):
            yield b"y" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    with small_upload_server.client() as admin:
        response = admin.post(VOTERS, content=body(),
                              headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert_error(response, 413, "file_too_large")


def test_voter_import_accepted(module_server: Any) -> None:
    needs_type("import_voters")
    with module_server.client() as admin:
        response = admin.post(VOTERS, files={"file": ("v.csv", VOTER_CSV, "text/csv")},
                              data={"format": "simple_csv", "mode": "incremental"})
        body = assert_accepted(response, "import_voters")
        assert admin.get(response.headers["location"]).json()["id"] == body["job_id"]
        wait_status(admin, body["job_id"], "completed")


def test_voter_import_defaults_and_bad_mode(module_server: Any) -> None:
    needs_type("import_voters")
    with module_server.client() as admin:
        assert_accepted(admin.post(VOTERS, files={"file": ("v.csv", VOTER_CSV)}), "import_voters")
        error = assert_error(admin.post(VOTERS, files={"file": ("v.csv", VOTER_CSV)}, data={"mode": "half"}),
                             422, "invalid_mode")
        assert "full" in error["message"]


def test_voter_formats(module_server: Any) -> None:
    with module_server.client(module_server.viewer_token) as viewer:
        body = viewer.get(f"{VOTERS}/formats").json()
    names = {f["name"]: f for f in body["formats"]}
    assert body["default"] == "auto" and "simple_csv" in names
    assert names["simple_csv"]["required_columns"] == ["first_name", "last_name"]
    assert all(f["description"] and f["required_columns"] for f in body["formats"])


def test_parcel_mapping_must_be_a_json_object(module_server: Any) -> None:
    with module_server.client() as admin:
        for mapping in ("{not json", "[1, 2]"):
            error = assert_error(admin.post(PARCELS, files={"file": ("p.geojson", b"{}")},
                                            data={"mapping": mapping}), 422, "invalid_mapping")
            assert "mapping" in error["message"]


def test_parcel_import_accepted(module_server: Any) -> None:
    needs_type("parcel_import")
    feature = {"type": "Feature", "properties": {"APN": "1", "SITUS": "1 Main St"},
               "geometry": {"type": "Polygon", "coordinates": [[[-78.9, 36.0], [-78.9, 36.001],
                                                                [-78.899, 36.001], [-78.9, 36.0]]]}}
    data = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    with module_server.client() as admin:
        response = admin.post(PARCELS, files={"file": ("p.geojson", data, "application/geo+json")},
                              data={"source": "test-county", "source_crs": "EPSG:4326",
                                    "mapping": json.dumps({"apn_field": "APN", "address_field": "SITUS"})})
    assert_accepted(response, "parcel_import")


def test_geocoding_body_validation(module_server: Any) -> None:
    with module_server.client() as admin, module_server.client(module_server.viewer_token) as viewer:
        assert_error(viewer.post(GEOCODE, json={}), 403)
        assert_error(admin.post(GEOCODE, json={"cty": "Durham"}), 422, "validation_error")
        assert_error(admin.post(GEOCODE, json={"only_missing": "perhaps"}), 422, "validation_error")
        assert_error(admin.post(GEOCODE, json={"limit": 0}), 422, "validation_error")
        assert_error(admin.post(GEOCODE, json={"city": "a\x00b"}), 422, "validation_error")


def test_geocoding_accepted(module_server: Any) -> None:
    needs_type("geocode_households")
    needs_type("import_voters")
    with module_server.client() as admin:
        voters = assert_accepted(admin.post(VOTERS, files={"file": ("v.csv", VOTER_CSV)},
                                            data={"format": "simple_csv"}), "import_voters")
        wait_status(admin, voters["job_id"], "completed")
        response = admin.post(GEOCODE, json={"city": "Durham", "provider": "local", "only_missing": False})
        body = assert_accepted(response, "geocode_households")
    assert body["job"]["params"]["city"] == "Durham"
