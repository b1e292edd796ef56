"""The voter start page previews the file and starts only on confirmation
(issue 17, item 3), in a real Chromium against a live server."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.browser.test_web import LIVE_TIMEOUT, XSS, log_in, status_badge

from cocoa.jobs.manager import JobManager
from cocoa.samples.vendor_export import generate_vendor

pytestmark = pytest.mark.browser


@pytest.fixture
def server(live_server: Any) -> Any:
    """Both backends (issue 17 asks each point of it on both)."""
    return live_server

ODD = ("Given,Family,Residence,Flat,Town,Postcode\n"
       f"Ann,{XSS},5 Elm St,2,Durham,27701\nBo,Lee,5 Elm St,3,Durham,27701\n").encode()


def voter_jobs(manager: JobManager) -> int:
    return manager.list_jobs(type_name="import_voters", limit=1)[1]


def choose(page: Page, name: str, data: bytes) -> None:
    page.get_by_label("Voter file").set_input_files({"name": name, "mimeType": "text/csv", "buffer": data})


def test_preview_then_confirm(page: Page, server: Any, manager: JobManager,
                              dialogs: list[str]) -> None:
    log_in(page, server)
    page.goto(f"{server.url}/start/voters")
    before = voter_jobs(manager)
    # A vendor export: the preview names the columns it will use; nothing starts yet.
    choose(page, "vendor.csv", generate_vendor(25, seed=4).data)
    page.get_by_role("button", name="Upload and import").click()
    preview = page.locator("#voter-preview")
    expect(preview.get_by_role("heading", name="Check before importing")).to_be_visible()
    expect(page.locator("#preview-summary")).to_contain_text("25 rows")
    expect(page.locator("#preview-identity")).to_contain_text("Voter ID")
    expect(preview.get_by_role("row", name=re.compile(r"unit\s+Apt"))).to_be_visible()
    expect(preview.locator("tbody tr")).to_have_count(8 + 20)  # 8 columns used, the first 20 rows
    assert voter_jobs(manager) == before
    page.get_by_role("button", name="Change file or mapping").click()
    expect(preview).to_be_hidden()
    # A header with no address column: refused, with what to do.
    choose(page, "emails.csv", b"First Name,Last Name,Email\nAnn,Lee,a@x.org\n")
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#start-error")).to_contain_text("unmappable_file")
    expect(page.locator("#start-error")).to_contain_text("mapping")
    expect(preview).to_be_hidden()
    # Odd column names, named by a mapping; file text is shown as text.
    choose(page, "odd.csv", ODD)
    page.get_by_label("Column mapping").fill(json.dumps(
        {"first_name": "Given", "last_name": "Family", "street": "Residence", "unit": "Flat",
         "city": "Town", "zip": "Postcode"}))
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#preview-summary")).to_contain_text("2 rows")
    expect(preview).to_contain_text(XSS)
    expect(preview).to_contain_text("5 ELM ST #2|27701")
    assert voter_jobs(manager) == before
    page.get_by_role("button", name="Confirm and start import").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    expect(status_badge(page)).to_have_text("completed", timeout=LIVE_TIMEOUT)
    assert voter_jobs(manager) == before + 1
    assert dialogs == []
