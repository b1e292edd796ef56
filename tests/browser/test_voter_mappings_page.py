"""The saved column mappings page and the start page's preview of a zipped
file (issue 17, items 1 and 3), in a real Chromium against a live server on
each backend."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.browser.test_web import XSS, csrf_token, log_in

from cocoa.jobs.manager import JobManager
from cocoa.jobtypes.import_voters.saved_mappings import list_mappings, save_mapping
from cocoa.samples.vendor_export import generate_vendor

pytestmark = pytest.mark.browser
MAPPING = {"first_name": "Given", "last_name": "Family", "street": "Residence", "city": "Town"}


@pytest.fixture
def server(live_server: Any) -> Any:
    """Both backends: the mappings live in a table of each."""
    return live_server


def names(manager: JobManager) -> set[str]:
    return {m["name"] for m in list_mappings(manager.engine)}


def test_admin_lists_and_deletes_mappings(page: Page, server: Any, manager: JobManager,
                                          dialogs: list[str]) -> None:
    keep, drop = f"keep-{uuid.uuid4().hex[:6]}", f"drop {uuid.uuid4().hex[:6]}"
    save_mapping(manager.engine, keep, {**MAPPING, "unit": XSS[:60]}, "admin")
    save_mapping(manager.engine, drop, MAPPING, "admin")
    log_in(page, server)
    page.goto(f"{server.url}/start/voters")
    page.get_by_role("link", name="saved mapping").click()
    expect(page.get_by_role("heading", name="Saved column mappings")).to_be_visible()
    table = page.locator("#saved-mappings")
    expect(table.get_by_role("row", name=re.compile(re.escape(keep)))).to_contain_text("street ← Residence")
    expect(table).to_contain_text(XSS[:60])  # file-made text is shown as text
    page.get_by_role("button", name=f"Delete mapping {drop}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Deleted mapping '{drop}'")
    expect(table.get_by_role("row", name=re.compile(re.escape(drop)))).to_have_count(0)
    assert names(manager) >= {keep} and drop not in names(manager)
    assert dialogs == []


def test_viewer_sees_mappings_but_cannot_delete(page: Page, server: Any, manager: JobManager) -> None:
    name = f"vendor-{uuid.uuid4().hex[:6]}"
    save_mapping(manager.engine, name, MAPPING, "admin")
    log_in(page, server, "viewer")
    page.goto(f"{server.url}/voters/mappings")
    expect(page.locator("#saved-mappings")).to_contain_text(name)
    expect(page.get_by_role("button", name=re.compile("Delete"))).to_have_count(0)
    response = page.request.post(f"{server.url}/voters/mappings/{name}/delete",
                                 form={"csrf_token": csrf_token(page)}, max_redirects=0)
    assert response.status == 403
    assert name in names(manager)


def test_admin_delete_without_csrf_is_refused(page: Page, server: Any, manager: JobManager) -> None:
    name = f"vendor-{uuid.uuid4().hex[:6]}"
    save_mapping(manager.engine, name, MAPPING, "admin")
    log_in(page, server)
    response = page.request.post(f"{server.url}/voters/mappings/{name}/delete", form={},
                                 max_redirects=0)
    assert response.status == 403 and name in names(manager)


def test_start_page_previews_a_zip(page: Page, server: Any, manager: JobManager) -> None:
    vendor = generate_vendor(30, seed=8).data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("vendor.csv", vendor)
    before = manager.list_jobs(type_name="import_voters", limit=1)[1]
    log_in(page, server)
    page.goto(f"{server.url}/start/voters")
    page.get_by_label("Voter file").set_input_files(
        {"name": "county.zip", "mimeType": "application/zip", "buffer": out.getvalue()})
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#preview-summary")).to_contain_text("30 rows")
    expect(page.locator("#preview-identity")).to_contain_text("Voter ID")
    assert manager.list_jobs(type_name="import_voters", limit=1)[1] == before
    page.get_by_role("button", name="Confirm and start import").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    recorded = manager.get(job_id).result["input"]
    assert recorded["filename"] == "county.zip" and recorded["compressed"] == "zip", recorded
    assert manager.list_jobs(type_name="import_voters", limit=1)[1] == before + 1


def test_preview_and_confirm_without_javascript(browser: Any, server: Any, manager: JobManager) -> None:
    """A plain form post: the preview page, then its confirm form starts the job."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, server)
        page.goto(f"{server.url}/start/voters")
        before = manager.list_jobs(type_name="import_voters", limit=1)[1]
        page.get_by_label("Voter file").set_input_files(
            {"name": "emails.csv", "mimeType": "text/csv", "buffer": b"First Name,Last Name,Email\nA,B,c@d.org\n"})
        page.get_by_role("button", name="Preview before importing").click()
        expect(page.locator("#start-error")).to_contain_text("mapping")
        expect(page.locator("#start-error")).to_contain_text("unmappable_file")
        page.get_by_role("link", name="Back to the voter import").click()
        odd = (f"Given,Family,Residence,Flat,Town,Postcode\nAnn,{XSS},5 Elm St,2,Durham,27701\n"
               "Bo,Lee,5 Elm St,3,Durham,27701\n").encode()
        mapping = '{"first_name": "Given", "last_name": "Family", "street": "Residence", "unit": "Flat", ' \
                  '"city": "Town", "zip": "Postcode"}'
        page.get_by_label("Voter file").set_input_files({"name": "odd.csv", "mimeType": "text/csv", "buffer": odd})
        page.get_by_label("Column mapping").fill(mapping)
        page.get_by_label("incremental").check()
        page.get_by_role("button", name="Preview before importing").click()
        expect(page.get_by_role("heading", name="Check before importing")).to_be_visible()
        expect(page.locator("#preview-summary")).to_contain_text("2 rows")
        expect(page.locator("#voter-preview")).to_contain_text(XSS)  # as text
        expect(page.locator("#voter-preview")).to_contain_text("5 ELM ST #2|27701")
        assert manager.list_jobs(type_name="import_voters", limit=1)[1] == before
        page.get_by_label(re.compile("Voter file")).set_input_files(
            {"name": "odd.csv", "mimeType": "text/csv", "buffer": odd})
        page.get_by_role("button", name="Confirm and start import").click()
        expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
        job = manager.get(page.url.rsplit("/", 1)[1])
        assert job.params["mode"] == "incremental" and job.params["mapping"]["street"] == "Residence", job.params
    finally:
        context.close()
