"""The geocoding start page in a real Chromium: a selection over the per-job
limit lands on the group's job page, which lists its jobs."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests import conftest as root
from tests.browser.test_web import log_in
from tests.browser.test_web_job_files import wait_status

from cocoa.db.engine import make_engine
from cocoa.db.tables import households
from cocoa.domain.addresses import household_key

pytestmark = pytest.mark.browser

with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect


def add_households(db_url: str, count: int) -> None:
    now = datetime.now(UTC)
    rows = [{"address_key": household_key(f"{n} OAK ST", "Durham", "NC", "27701"),
             "street_line": f"{n} OAK ST", "city": "Durham", "state": "NC", "zip_code": "27701",
             "created_at": now, "updated_at": now} for n in range(1, count + 1)]
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(households), rows)
    engine.dispose()


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    yield from root.serving(db_url, tmp_path, COCOA_MAX_ITEMS_PER_JOB="4", COCOA_MAX_ITEMS_PER_GROUP="20")


def test_start_page_over_the_limit_lands_on_the_group(page: Page, server: Any) -> None:
    add_households(server.db_url, 10)
    log_in(page, server)
    page.goto(f"{server.url}/start/geocode")
    page.get_by_role("button", name="Start geocoding").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    group_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#group-parts li")).to_have_count(3)
    expect(page.locator("#group-parts li").nth(1)).to_contain_text("households 5–8")  # not "rows"
    with server.client() as admin:
        group = wait_status(admin, group_id, "completed")
    assert group["kind"] == "group" and [c["item_range"] for c in group["children"]] == [
        [1, 4], [5, 8], [9, 10]]
    assert group["result"]["no_match"] == 10  # the offline provider knows no parcels here
    page.goto(f"{server.url}/jobs")  # the list's row of the group, drawn and refreshed by app.js
    first = group["children"][0]["id"]
    expect(page.locator(f'#jobs-body li[data-child-id="{first}"]')).to_contain_text("households 1–4")


def test_start_page_over_the_group_limit_says_what_to_do(page: Page, server: Any) -> None:
    add_households(server.db_url, 21)
    log_in(page, server)
    page.goto(f"{server.url}/start/geocode")
    page.get_by_role("button", name="Start geocoding").click()
    expect(page.locator("#start-error")).to_contain_text("COCOA_MAX_ITEMS_PER_GROUP")
    expect(page.locator("#start-error")).to_contain_text("HTTP 422")
