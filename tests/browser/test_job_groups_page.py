"""Job groups in a real Chromium: a zipped voter file over the per-job limit
is one row on the Jobs page that opens to its jobs (on the first paint and
in a row the live refresh adds), and each child links to its own page."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import conftest as root
from tests.browser.test_web import LIVE_TIMEOUT, log_in
from tests.browser.test_web_job_files import wait_status

from cocoa.samples.voters import generate

pytestmark = pytest.mark.browser
HOSTILE = "<img src=x onerror=alert(1)>.zip"

with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    yield from root.serving(db_url, tmp_path, COCOA_MAX_ITEMS_PER_JOB="40", COCOA_VOTER_BATCH_SIZE="10")


def zipped_group(server: Any, seed: int) -> dict[str, Any]:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ncvoter.txt", generate("nc_statewide", 100, mess_rate=0.0, seed=seed).data)
    with server.client() as admin:
        response = admin.post("/api/v1/voters/import",
                              files={"file": (HOSTILE, out.getvalue(), "application/zip")})
        assert response.status_code == 202, response.text
        return wait_status(admin, response.json()["job_id"], "completed")


def check_group_row(page: Page, group: dict[str, Any], timeout: int = 10_000) -> None:
    row = page.locator(f'#jobs-body tr[data-job-id="{group["id"]}"]')
    expect(row).to_have_count(1, timeout=timeout)
    details = row.locator("details.group-children")
    expect(details.locator("summary")).to_have_text("group of 3 jobs", timeout=timeout)
    items = details.locator("li")
    expect(items.first).not_to_be_visible()  # closed until opened
    details.locator("summary").click()
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_contain_text("rows 1–40")
    expect(items.nth(2)).to_contain_text("rows 81–100")
    expect(items.nth(1).locator(".badge")).to_have_text("completed", timeout=timeout)
    for child in group["children"]:  # children are not rows of their own
        expect(page.locator(f'#jobs-body tr[data-job-id="{child["id"]}"]')).to_have_count(0)
    expect(row.locator("td.job-input")).to_contain_text(HOSTILE)  # as text
    expect(row.locator("td.job-input")).to_contain_text("zip")


def test_group_row_opens_to_its_children(page: Page, server: Any, dialogs: list[str]) -> None:
    first = zipped_group(server, 1)
    log_in(page, server)
    check_group_row(page, first)
    # A group the live refresh adds (app.js) opens the same way.
    second = zipped_group(server, 2)
    check_group_row(page, second, timeout=LIVE_TIMEOUT)
    child = second["children"][1]
    page.locator(f'#jobs-body tr[data-job-id="{second["id"]}"] li[data-child-id="{child["id"]}"] a').click()
    expect(page).to_have_url(f"{server.url}/jobs/{child['id']}")
    expect(page.locator("#group-parent")).to_contain_text("rows 41–80")
    page.locator("#group-parent a").click()  # back to the group's page, which lists its jobs
    expect(page.locator("#group-parts li")).to_have_count(3)
    expect(page.locator("#group-parts li").nth(2)).to_contain_text("rows 81–100")
    assert page.locator("img[src=x]").count() == 0 and dialogs == []
