"""The web Jobs pages in a real Chromium, against the real app under Uvicorn
(the browser, server, manager and page fixtures are in ``conftest.py``).

Every wait is one of Playwright's auto-waiting ``expect`` assertions with a
timeout; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cocoa.db.tables import job_errors, jobs
from cocoa.jobs.manager import JobManager
from cocoa.jobs.model import utcnow
from cocoa.jobs.types import all_job_types

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
XSS = "<script>alert(1)</script>"
LIVE_TIMEOUT = 20_000  # ms; a job of a few seconds plus SSE/polling latency

with contextlib.suppress(ImportError):  # without it the fixtures skip (or fail in CI) first
    from playwright.sync_api import Browser, Page, expect


# --------------------------------------------------------------------------- helpers


def log_in(page: Page, server: Any, username: str = "admin", password: str | None = None) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password or f"{username}-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()


def noop_job(manager: JobManager, **overrides: int) -> str:
    request = {"items": 60, "delay_ms": 30, "batch_size": 5, "error_every": 7, **overrides}
    return manager.create("noop", request, created_by="admin").id


def parked_noop_job(manager: JobManager, **overrides: int) -> str:
    """A noop job that is (or is about to be) paused, so a test can watch it
    from the very first batch once it resumes it."""
    job_id = noop_job(manager, **overrides)
    manager.control(job_id, "pause")  # pending: paused now; already claimed: at its next batch
    return job_id


def status_badge(page: Page) -> Any:
    return page.locator("#job-status")


def csrf_token(page: Page) -> str:
    return str(page.locator('meta[name="csrf-token"]').get_attribute("content"))


def add_hostile_data(manager: JobManager, job_id: str) -> None:
    """Data as a hostile voter file would leave it: markup in an item error,
    in the result statistics and in the params."""
    with manager.engine.begin() as conn:
        conn.execute(job_errors.insert().values(
            job_id=job_id, item_ref=f"row 7 {XSS}", item_index=7, severity="error",
            code="bad_name", message=f"Voter named {XSS} has no address", created_at=utcnow(),
        ))
        row = conn.execute(sa.select(jobs.c.result, jobs.c.params).where(jobs.c.id == job_id)).one()
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(
            result={**row.result, "last_voter": XSS}, params={**row.params, "label": XSS},
            error_count=jobs.c.error_count + 1,
        ))


# --------------------------------------------------------------------------- tests


def test_login_wrong_password_then_right(page: Page, server: Any) -> None:
    page.goto(f"{server.url}/jobs")
    expect(page).to_have_url(re.compile(r"/login\?next=/jobs$"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    page.get_by_label("Password").fill("admin-password")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/jobs$"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(f"{server.url}/jobs")
    expect(page).to_have_url(re.compile(r"/login"))


def test_jobs_page_lists_jobs_with_counts_and_filters(page: Page, server: Any, manager: JobManager) -> None:
    job_id = noop_job(manager, items=3, delay_ms=0)
    log_in(page, server)
    page.goto(f"{server.url}/jobs?type=noop")
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    expect(row).to_be_visible()
    expect(row.get_by_role("link", name=job_id[:8])).to_be_visible()
    expect(row).to_contain_text("noop")
    expect(row.locator(".badge")).to_have_text("completed", timeout=LIVE_TIMEOUT)  # live, no reload
    expect(row).to_contain_text("3 / 3")
    expect(row).to_contain_text("admin")
    expect(page.get_by_label("Type", exact=True)).to_have_value("noop")
    page.get_by_label("Status", exact=True).select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=failed"))
    expect(page.locator("#jobs-body")).to_contain_text("No jobs match this filter")


def test_progress_bar_moves_to_100_without_reload(page: Page, server: Any, manager: JobManager) -> None:
    job_id = parked_noop_job(manager)
    log_in(page, server)
    page.goto(f"{server.url}/jobs/{job_id}")
    expect(status_badge(page)).to_have_text("paused", timeout=LIVE_TIMEOUT)
    page.evaluate("window.__sameDocument = true")
    percent = page.locator('.card [data-role="percent"]')
    bar = page.locator(".card progress")
    manager.control(job_id, "resume")
    # Somewhere strictly between the start and the end...
    expect(percent).to_have_text(re.compile(r"^(?:[1-9]\d?)\.\d%$"), timeout=LIVE_TIMEOUT)
    expect(status_badge(page)).to_contain_text("processing")
    # ...then done.
    expect(percent).to_have_text("100.0%", timeout=LIVE_TIMEOUT)
    expect(bar).to_have_attribute("value", "100")
    expect(status_badge(page)).to_have_text("completed")
    expect(page.locator('.card [data-role="processed"]')).to_have_text("60 / 60")
    expect(page.locator("#t-completed")).not_to_have_text("—")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"


def test_polling_fallback_without_event_source(page: Page, server: Any, manager: JobManager) -> None:
    """Browsers or proxies without working SSE still get live updates."""
    page.add_init_script("delete window.EventSource")
    job_id = parked_noop_job(manager, delay_ms=60)  # ~3.6 s: several polls see it running
    log_in(page, server)
    page.goto(f"{server.url}/jobs/{job_id}")
    expect(page.locator("#live-note")).to_have_text("Live (polling)")
    expect(status_badge(page)).to_have_text("paused", timeout=LIVE_TIMEOUT)
    actions = page.locator("#job-actions")
    expect(actions.get_by_role("button", name="Resume")).to_be_visible()
    manager.control(job_id, "resume")
    expect(actions.get_by_role("button", name="Pause")).to_be_visible(timeout=LIVE_TIMEOUT)
    expect(page.locator('.card [data-role="percent"]')).to_have_text("100.0%", timeout=LIVE_TIMEOUT)
    expect(page.locator("#error-total")).to_have_text("8")
    expect(page.locator("#errors-body tr")).to_have_count(8)
    expect(page.locator("#job-actions button")).to_have_count(0)


def test_item_errors_listed_and_paginated(page: Page, server: Any, manager: JobManager) -> None:
    job_id = noop_job(manager, items=200, delay_ms=0, batch_size=50, error_every=7)
    log_in(page, server)
    page.goto(f"{server.url}/jobs/{job_id}")
    expect(status_badge(page)).to_have_text("completed", timeout=LIVE_TIMEOUT)
    expect(page.locator("#error-total")).to_have_text("28")
    rows = page.locator("#errors-body tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text("item 6")
    expect(rows.first).to_contain_text("noop_error")
    expect(rows.first).to_contain_text("item 6 is bad on purpose")
    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"errors_page=2"))
    expect(rows).to_have_count(3)
    expect(rows.last).to_contain_text("item 195")


def test_cancel_running_job_with_the_button(page: Page, server: Any, manager: JobManager) -> None:
    job_id = noop_job(manager, items=2000, delay_ms=20)
    log_in(page, server)
    page.goto(f"{server.url}/jobs/{job_id}")
    expect(status_badge(page)).to_have_text("processing", timeout=LIVE_TIMEOUT)
    actions = page.locator("#job-actions")
    expect(actions.get_by_role("button", name="Pause")).to_be_visible()
    expect(actions.get_by_role("button", name="Retry")).to_have_count(0)
    actions.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status").filter(has_text="Cancel")).to_be_visible()
    expect(status_badge(page)).to_have_text("cancelled", timeout=LIVE_TIMEOUT)
    # The buttons follow the state: only retry is left.
    expect(actions.get_by_role("button", name="Retry")).to_be_visible()
    expect(actions.get_by_role("button", name="Cancel")).to_have_count(0)
    assert manager.get(job_id).status.value == "cancelled"


def test_hostile_text_stays_inert(page: Page, server: Any, manager: JobManager, dialogs: list[str]) -> None:
    job_id = parked_noop_job(manager, items=30, batch_size=10)
    log_in(page, server)
    page.goto(f"{server.url}/jobs/{job_id}")
    expect(status_badge(page)).to_have_text("paused", timeout=LIVE_TIMEOUT)
    add_hostile_data(manager, job_id)
    page.reload()
    # Server-rendered: error item, message, result and params show the markup as text.
    expect(page.locator("#errors-body")).to_contain_text(f"Voter named {XSS} has no address")
    expect(page.locator("#errors-body")).to_contain_text(f"row 7 {XSS}")
    expect(page.locator("#result-table")).to_contain_text(XSS)
    expect(page.locator("#params-table")).to_contain_text(XSS)
    # Rendered by app.js from live updates: resume and let it re-render everything.
    manager.control(job_id, "resume")
    expect(status_badge(page)).to_have_text("completed", timeout=LIVE_TIMEOUT)
    expect(page.locator("#result-table")).to_contain_text("items")  # re-rendered from the API
    expect(page.locator("#result-table")).to_contain_text(XSS)
    expect(page.locator("#errors-body")).to_contain_text(f"Voter named {XSS} has no address")
    assert page.locator("main script, main img").count() == 0
    # The jobs list, rendered by its poller, with a hostile creator name.
    manager.create("noop", {"items": 1}, created_by=XSS)
    page.goto(f"{server.url}/jobs?type=noop")
    expect(page.locator("#jobs-body")).to_contain_text(XSS)
    expect(page.locator("#live-note")).to_contain_text("Live", timeout=LIVE_TIMEOUT)
    expect(page.locator("#jobs-body")).to_contain_text(XSS)
    assert dialogs == []
    assert page.evaluate("document.querySelectorAll('main script').length") == 0


def test_viewer_sees_no_controls_and_cannot_post(page: Page, server: Any, manager: JobManager) -> None:
    job_id = parked_noop_job(manager)
    log_in(page, server, "viewer")
    expect(page.get_by_role("link", name="Import voters")).to_have_count(0)
    page.goto(f"{server.url}/jobs/{job_id}")
    expect(status_badge(page)).to_contain_text("pause", timeout=LIVE_TIMEOUT)
    expect(page.locator("#job-actions button")).to_have_count(0)
    response = page.request.post(f"{server.url}/jobs/{job_id}/cancel",
                                 form={"csrf_token": csrf_token(page)}, max_redirects=0)
    assert response.status == 403
    assert page.request.get(f"{server.url}/start/voters", max_redirects=0).status == 403
    assert manager.get(job_id).status.value != "cancelled"


def test_posts_without_csrf_token_are_refused(page: Page, browser: Browser, server: Any,
                                              manager: JobManager) -> None:
    job_id = parked_noop_job(manager)
    log_in(page, server)
    url = f"{server.url}/jobs/{job_id}/cancel"
    assert page.request.post(url, form={}, max_redirects=0).status == 403
    assert page.request.post(url, form={"csrf_token": "forged"}, max_redirects=0).status == 403
    upload = page.request.post(f"{server.url}/start/geocode", form={"provider": "local"},
                               headers={"Accept": "application/json"}, max_redirects=0)
    assert upload.status == 403
    assert upload.json()["error"]["code"] == "csrf_failed"
    assert manager.get(job_id).status.value != "cancelled"
    # The same POST with the page's token works: the token is the only difference.
    ok = page.request.post(url, form={"csrf_token": csrf_token(page)}, max_redirects=0)
    assert ok.status == 303
    # Login needs the token too (no login CSRF).
    fresh = browser.new_context()
    try:
        refused = fresh.request.post(f"{server.url}/login", max_redirects=0,
                                     form={"username": "admin", "password": "admin-password"})
        assert refused.status == 403
    finally:
        fresh.close()


def _voter_csv() -> bytes:
    lines = ["first_name,last_name,address,city,state,zip"]
    lines += [f"Ann{i},Lee,{100 + i} Main St,Raleigh,NC,27601" for i in range(12)]
    lines.append(f"{XSS},Smith,1 Oak Ave,Raleigh,NC,27601")
    return ("\n".join(lines) + "\n").encode()


def test_upload_voter_file_lands_on_job_page(page: Page, server: Any, dialogs: list[str]) -> None:
    assert "import_voters" in all_job_types(), "job type import_voters is not registered"
    log_in(page, server)
    page.get_by_role("link", name="Import voters").click()
    # No file: the page says so instead of sending.
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#start-error")).to_contain_text("Choose a file")
    # A refused file: the server's validation message is shown in the page.
    page.get_by_label("Voter file").set_input_files(
        {"name": "empty.csv", "mimeType": "text/csv", "buffer": b""})
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#start-error")).to_contain_text(re.compile(r"HTTP 4\d\d"))
    # A good one.
    page.get_by_label("Voter file").set_input_files(
        {"name": "voters.csv", "mimeType": "text/csv", "buffer": _voter_csv()})
    page.get_by_label("File format").select_option("simple_csv")
    page.get_by_label("incremental").check()
    page.get_by_role("button", name="Upload and import").click()
    # The page previews the file first and starts only on confirmation (issue 17).
    expect(page.locator("#preview-summary")).to_contain_text("simple_csv")
    page.get_by_role("button", name="Confirm and start import").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Import voters")
    expect(status_badge(page)).to_have_text("completed", timeout=LIVE_TIMEOUT)
    expect(page.locator("#params-table")).to_contain_text("simple_csv")
    expect(page.locator("#params-table")).to_contain_text("incremental")
    assert dialogs == []


def _parcels_geojson() -> bytes:
    features = [
        {"type": "Feature", "properties": {"PIN": f"P-{i}", "SITE_ADDR": f"{100 + i} Main St",
                                           "TOWN": "Raleigh", "ZIP": "27601"},
         "geometry": {"type": "Polygon", "coordinates": [[
             [-78.64 + i * 0.001, 35.77], [-78.639 + i * 0.001, 35.77],
             [-78.639 + i * 0.001, 35.771], [-78.64 + i * 0.001, 35.77]]]}}
        for i in range(5)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def test_upload_parcels_with_column_mapping(page: Page, server: Any) -> None:
    assert "parcel_import" in all_job_types(), "job type parcel_import is not registered"
    log_in(page, server)
    page.get_by_role("link", name="Import parcels").click()
    page.get_by_label("Parcel file").set_input_files(
        {"name": "parcels.geojson", "mimeType": "application/geo+json", "buffer": _parcels_geojson()})
    page.get_by_role("button", name="Upload and import").click()
    # Unrecognised columns: the job type's message says what to do; nothing is lost on the form.
    expect(page.locator("#start-error")).to_contain_text("mapping")
    page.get_by_label("APN (parcel id) column").fill("PIN")
    page.get_by_label("Situs address column").fill("SITE_ADDR")
    page.get_by_label("City column").fill("TOWN")
    page.get_by_label("ZIP column").fill("ZIP")
    page.get_by_label("State of every parcel").fill("NC")
    page.get_by_label("Source name").fill("test_county")
    page.get_by_role("button", name="Upload and import").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Parcel import")
    expect(page.locator("#params-table")).to_contain_text("test_county")
    expect(page.locator("#params-table")).to_contain_text("SITE_ADDR")


def test_start_pages_show_validation_errors(page: Page, server: Any) -> None:
    assert "geocode_households" in all_job_types(), "job type geocode_households is not registered"
    log_in(page, server)
    page.goto(f"{server.url}/start/geocode")
    page.get_by_label("Limit").fill("0")
    page.get_by_role("button", name="Start geocoding").click()
    expect(page.locator("#start-error")).to_contain_text("limit must be")
    expect(page.locator("#start-error")).to_contain_text("HTTP 422")


def test_keyboard_skip_link_and_phone_width(browser: Browser, server: Any, manager: JobManager) -> None:
    job_id = noop_job(manager, items=40, delay_ms=0, batch_size=10, error_every=3)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                              is_mobile=True, has_touch=True)
    try:
        page = ctx.new_page()
        log_in(page, server)
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        page.goto(f"{server.url}/jobs?type=noop")
        expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        assert _fits_width(page), "the jobs page scrolls sideways at phone width"
        page.screenshot(path=str(ARTIFACTS / "jobs-phone-390x844.png"), full_page=True)
        page.goto(f"{server.url}/jobs/{job_id}")
        expect(status_badge(page)).to_have_text("completed", timeout=LIVE_TIMEOUT)
        expect(page.locator("#errors-body tr").first).to_be_visible()
        assert _fits_width(page), "the job page scrolls sideways at phone width"
        page.screenshot(path=str(ARTIFACTS / "job-phone-390x844.png"), full_page=True)
        page.goto(f"{server.url}/start/voters")
        assert _fits_width(page), "the upload page scrolls sideways at phone width"
        page.screenshot(path=str(ARTIFACTS / "start-voters-phone-390x844.png"), full_page=True)
    finally:
        ctx.close()


def _fits_width(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
