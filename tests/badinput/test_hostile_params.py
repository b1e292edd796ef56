"""Hostile numbers and nesting in parameters: never a 500.

The findings this guards: ``page=10**20`` on the web jobs list and
``errors_page=10**20`` on a job page made the database raise "int too large"
(a 500), ``"²"`` passed ``str.isdigit()`` but not ``int()`` (a 500), and a
deeply nested ``mapping`` JSON in the parcel import form raised
``RecursionError`` (a 500).

What is expected instead, against a real ``cocoa serve`` on both backends:

* **API**: every numeric query or path parameter is bounded, and anything
  outside (or not a number) is a 422 in the error shape; a ``mapping`` must
  be a flat JSON object of column names, anything else a 422 that says so.
* **Web pages**: a page number that is not a positive whole number means
  page 1, and one past the end shows the last page (the pages are for people
  following links; an error page for ``?page=99999999999999999999`` helps no
  one). The geocoding form's ``limit`` is a 422 with the form's message.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)
from hostile_helpers import Database, web_session

from cocoa.config import Settings
from cocoa.db.engine import make_engine
from cocoa.jobs.manager import JobManager

HUGE = str(10**20)
ENORMOUS = "9" * 5000  # past Python's 4,300-digit int() limit
NOT_NUMBERS = ["²", "-5", "1e3", "0x10", " 7", "", "1.5", "٣"]
NOOP_JOBS = 30  # two web pages of 25
ERROR_ITEMS = 60  # three pages of 25 item errors
DEADLINE = 60.0


def short(value: object) -> str:
    """Readable test ids for 5,000-character values."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:8]}...{len(text)}chars"


@dataclass
class Params:
    server: root.LiveServer
    errors_job: str  # a completed job with ERROR_ITEMS item errors

    def api(self) -> httpx.Client:
        return self.server.client()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def params(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Params]:
    data_dir = tmp_path_factory.mktemp("hostile_params")
    with Database(request.param, data_dir) as url:
        server = root.start_live_server(url, data_dir)
        manager = JobManager(make_engine(url), Settings(database_url=url, data_dir=data_dir))
        try:
            for _ in range(NOOP_JOBS - 1):
                manager.create("noop", {"items": 1}, created_by="admin")
            job = manager.create("noop", {"items": ERROR_ITEMS, "error_every": 1}, created_by="admin")
            with server.client() as client:
                wait_completed(client, job.id)
            yield Params(server, job.id)
        finally:
            manager.engine.dispose()
            root.stop_live_server(server)


def wait_completed(client: httpx.Client, job_id: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while client.get(f"/api/v1/jobs/{job_id}").json()["status"] != "completed":
        assert time.monotonic() < deadline, f"job {job_id} did not complete"
        time.sleep(0.05)  # poll interval, bounded by the deadline


def assert_422(response: httpx.Response, says: str) -> dict[str, Any]:
    assert response.status_code == 422, f"{response.status_code} {response.text[:500]}"
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert says.lower() in error["message"].lower(), error["message"]
    return error


# ============================================================================ API


@pytest.mark.parametrize("value", [HUGE, ENORMOUS, "²", "-5", "1e3", "0x10", "1.5", "٣"], ids=short)
@pytest.mark.parametrize("name", ["limit", "offset"])
def test_api_job_listing_numbers_are_bounded(params: Params, name: str, value: str) -> None:
    with params.api() as api:
        assert_422(api.get("/api/v1/jobs", params={name: value}), name)
        assert_422(api.get(f"/api/v1/jobs/{params.errors_job}/errors", params={name: value}), name)


def test_api_largest_allowed_offset_is_an_empty_page(params: Params) -> None:
    with params.api() as api:
        listed = api.get("/api/v1/jobs", params={"offset": 2**31 - 1, "type": "noop"})
        errors = api.get(f"/api/v1/jobs/{params.errors_job}/errors", params={"offset": 2**31 - 1})
    assert listed.status_code == 200 and listed.json()["jobs"] == [] and listed.json()["total"] == NOOP_JOBS
    assert errors.status_code == 200 and errors.json()["errors"] == [] and errors.json()["total"] == ERROR_ITEMS


@pytest.mark.parametrize("value", [HUGE, ENORMOUS, "²", "0", "-1"], ids=short)
def test_api_token_ids_are_bounded(params: Params, value: str) -> None:
    with params.api() as api:
        assert_422(api.delete(f"/api/v1/auth/tokens/{value}"), "token_id")


PARCELS = "/api/v1/gis/parcels/import"
GEOJSON = json.dumps({"type": "FeatureCollection", "features": []}).encode()


@pytest.mark.parametrize(("mapping", "says"), [
    ('{"apn_field": ' + "[" * 4000 + "]" * 4000 + "}", "nested too deeply"),
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ('{"apn_field": ' + "{\"a\": " * 400 + "1" + "}" * 400 + "}", "flat JSON object"),
    ('{"apn_field": ["APN"], "address_field": "SITUS"}', "not a string: 'apn_field'"),
    ('{"apn_field": {"column": "APN"}}', "flat JSON object of column names"),
], ids=["deep-in-object", "deep-array", "nested-objects", "list-value", "object-value"])
def test_api_parcel_mapping_must_be_flat(params: Params, mapping: str, says: str) -> None:
    with params.api() as api:
        response = api.post(PARCELS, files={"file": ("p.geojson", GEOJSON, "application/geo+json")},
                            data={"mapping": mapping})
    error = assert_422(response, says)
    assert error["code"] == "invalid_mapping"
    assert error["details"][0]["location"] == ["body", "mapping"]


# ============================================================================ web pages


def offset_shown(html: str) -> int:
    found = re.search(r'data-offset="(\d+)"', html)
    assert found, "no data-offset on the jobs page"
    return int(found.group(1))


def errors_page_shown(html: str) -> int:
    found = re.search(r'data-errors-page="(\d+)"', html)
    assert found, "no data-errors-page on the job page"
    return int(found.group(1))


@pytest.mark.parametrize(("value", "page"), [
    (HUGE, 2), (ENORMOUS, 2), ("3", 2), ("2", 2), ("0" * 40 + "2", 2), *((v, 1) for v in NOT_NUMBERS),
], ids=short)
def test_web_jobs_page_number_is_clamped(params: Params, value: str, page: int) -> None:
    """Past the end: the last page (2 of 2 for the noop jobs); not a number: page 1."""
    with web_session(params.server.url, "viewer") as (web, _):
        response = web.get("/jobs", params={"type": "noop", "page": value})
    assert response.status_code == 200, response.text[:500]
    assert offset_shown(response.text) == (page - 1) * 25
    assert f"Page {page} of 2" in response.text


@pytest.mark.parametrize(("value", "page"), [(HUGE, 3), (ENORMOUS, 3), ("4", 3), ("2", 2), ("²", 1), ("-1", 1)],
                         ids=short)
def test_web_errors_page_number_is_clamped(params: Params, value: str, page: int) -> None:
    with web_session(params.server.url, "viewer") as (web, _):
        response = web.get(f"/jobs/{params.errors_job}", params={"errors_page": value})
    assert response.status_code == 200, response.text[:500]
    assert errors_page_shown(response.text) == page
    assert f"Page {page} of 3" in response.text


@pytest.mark.parametrize("limit", ["²", "٣", "-3", "0", "1e3", HUGE[:19] + "x"])
def test_web_geocode_form_limit_is_a_plain_number(params: Params, limit: str) -> None:
    with web_session(params.server.url, "admin") as (web, token):
        response = web.post("/start/geocode", data={"csrf_token": token, "provider": "local", "limit": limit},
                            headers={"Accept": "application/json"})
    assert_422(response, "limit must be a whole number")


def test_web_parcel_form_ignores_a_nested_mapping_field(params: Params) -> None:
    """The web form takes its column mapping as separate text fields, so no
    JSON is parsed there; a hostile ``mapping`` field is not read at all."""
    nested = "[" * 5000 + "]" * 5000
    with web_session(params.server.url, "admin") as (web, token):
        response = web.post("/start/parcels", data={"csrf_token": token, "mapping": nested},
                            files={"file": ("p.geojson", GEOJSON, "application/geo+json")},
                            headers={"Accept": "application/json"})
    assert 400 <= response.status_code < 500, f"{response.status_code} {response.text[:500]}"
    assert "nested" not in response.text and response.json()["error"]["code"] != "internal_error"

