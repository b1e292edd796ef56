"""The web start pages offer what the job types' request schemas list, and
refuse a value outside it with the code the API gives the same mistake.

Against a real ``cocoa serve`` on loopback (no worker: nothing has to run).
"""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)
from hostile_helpers import Database, web_session

from cocoa.domain.voter_files import LAYOUTS
from cocoa.jobtypes.requests import IMPORT_VOTERS, PROVIDER

VOTERS_CSV = b"first_name,last_name,address,city,state,zip\nAda,Lovelace,1 Main St,Durham,NC,27701\n"
AS_SCRIPT = {"X-Requested-With": "XMLHttpRequest"}  # the upload script: JSON answers


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("start_choices")
    with Database(request.param, data_dir) as url:
        live = root.start_live_server(url, data_dir, worker=False)
        try:
            yield live.url
        finally:
            root.stop_live_server(live)


def test_voter_page_lists_every_layout_and_mode(server: str) -> None:
    with web_session(server, "admin") as (admin, _):
        page = html.unescape(admin.get("/start/voters").text)
    for name in ("auto", *LAYOUTS):
        assert f'<option value="{name}">' in page, name
    for choice in IMPORT_VOTERS.field("mode").choices:
        assert f'value="{choice.value}"' in page and f"{choice.value}: {choice.description}" in page


def test_geocode_page_describes_every_provider(server: str) -> None:
    with web_session(server, "admin") as (admin, _):
        page = html.unescape(admin.get("/start/geocode").text)
    for choice in PROVIDER.choices:
        assert f'<option value="{choice.value}">' in page and f"{choice.value}: {choice.description}" in page


def test_a_bad_mode_is_invalid_mode_as_in_the_api(server: str) -> None:
    with web_session(server, "admin") as (admin, token):
        refused = admin.post("/start/voters", headers=AS_SCRIPT,
                             data={"csrf_token": token, "format": "simple_csv", "mode": "half"},
                             files={"file": ("voters.csv", VOTERS_CSV, "text/csv")})
        page = admin.post("/start/voters", data={"csrf_token": token, "format": "simple_csv", "mode": "half"},
                          files={"file": ("voters.csv", VOTERS_CSV, "text/csv")})
    assert refused.status_code == 422, refused.text[:500]
    error = refused.json()["error"]
    assert error["code"] == "invalid_mode" and error["details"] == {"field": "mode"}
    assert "full, incremental" in error["message"]
    assert page.status_code == 422 and "mode must be one of" in html.unescape(page.text)
