"""The Jobs page's filters, search and bulk actions (issue 19) in a real
Chromium against ``cocoa serve --no-worker`` on SQLite, so jobs stay exactly
where the test puts them. Waits are Playwright's auto-waiting ``expect``
assertions; nothing sleeps."""

from __future__ import annotations

import contextlib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.browser.test_web import log_in

from cocoa.jobs.manager import JobManager, Lease
from cocoa.jobs.model import Job

pytestmark = pytest.mark.browser

with contextlib.suppress(ImportError):  # without it the browser fixture skips (or fails in CI) first
    from playwright.sync_api import Page, expect


@pytest.fixture
def server(idle_server: Any) -> Any:
    return idle_server


@pytest.fixture
def viewport() -> dict[str, int]:
    """Wide enough for the filter bar and the bulk actions on one line."""
    return {"width": 1400, "height": 900}


def failed_noop(manager: JobManager, created_by: str = "admin") -> Job:
    job = manager.create("noop", {"items": 1}, created_by=created_by)
    claimed = manager.claim("browser-test", only_types=["noop"])
    assert claimed is not None and claimed.id == job.id
    return manager.fail(Lease(job.id, "browser-test", claimed.attempt), "boom")


def row(page: Page, job_id: str) -> Any:
    return page.locator(f'tr[data-job-id="{job_id}"]')


def test_filters_are_kept_in_the_url_and_search_finds_a_prefix(page: Page, server: Any,
                                                               manager: JobManager) -> None:
    failed = failed_noop(manager)
    cancelled = manager.create("noop", {"items": 1}, created_by="alice")
    manager.control(cancelled.id, "cancel")
    pending = manager.create("noop", {"items": 1}, created_by="admin")
    log_in(page, server)
    page.goto(f"{server.url}/jobs?type=noop")
    page.get_by_label("Status", exact=True).select_option(["failed", "cancelled"])
    page.get_by_role("button", name="Filter").click()
    query = parse_qs(urlsplit(page.url).query)
    assert sorted(query["status"]) == ["cancelled", "failed"] and query["type"] == ["noop"]
    expect(row(page, failed.id)).to_be_visible()
    expect(row(page, cancelled.id)).to_be_visible()
    expect(row(page, pending.id)).to_have_count(0)
    expect(page.locator("#jobs-total")).to_have_text("2")
    page.get_by_label("Created by").fill("alice")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"created_by=alice"))
    expect(row(page, cancelled.id)).to_be_visible()
    expect(row(page, failed.id)).to_have_count(0)
    page.reload()  # the filter lives in the URL: the same page after a reload
    expect(page.get_by_label("Created by")).to_have_value("alice")
    expect(page.locator("#jobs-total")).to_have_text("1")
    page.goto(f"{server.url}/jobs?type=noop")
    page.get_by_label("Search").fill(pending.id[:8])
    page.get_by_role("button", name="Filter").click()
    expect(row(page, pending.id)).to_be_visible()
    expect(page.locator("#jobs-body tr[data-job-id]")).to_have_count(1)
    page.goto(f"{server.url}/jobs?type=noop&created_after=yesterday-ish")
    expect(page.locator(".filter-notice")).to_contain_text("ISO 8601")


def test_cancel_selected_asks_with_the_count(page: Page, server: Any, manager: JobManager) -> None:
    first = manager.create("noop", {"items": 1}, created_by="admin")
    second = manager.create("noop", {"items": 1}, created_by="admin")
    untouched = manager.create("noop", {"items": 1}, created_by="admin")
    log_in(page, server)
    page.goto(f"{server.url}/jobs?type=noop")
    page.get_by_label(f"Select job {first.id[:8]}").check()
    page.get_by_label(f"Select job {second.id[:8]}").check()
    page.get_by_role("button", name="Cancel selected").click()
    expect(page.locator("#bulk-question")).to_have_text("Cancel 2 selected job(s)?")
    expect(page.locator("#bulk-ids li")).to_have_count(2)
    assert manager.get(first.id).status.value == "pending"  # nothing happens before the confirmation
    page.get_by_role("button", name="Cancel 2 job(s)").click()
    expect(page).to_have_url(re.compile(r"/jobs\?type=noop$"))
    expect(page.get_by_text("Cancelled 2 job(s).")).to_be_visible()
    expect(row(page, first.id).locator(".badge")).to_have_text("cancelled")
    expect(row(page, second.id).locator(".badge")).to_have_text("cancelled")
    expect(row(page, untouched.id).locator(".badge")).to_have_text("pending")


def test_retry_all_failed_matching_the_filter(page: Page, server: Any, manager: JobManager) -> None:
    mine = [failed_noop(manager), failed_noop(manager)]
    theirs = failed_noop(manager, created_by="alice")
    log_in(page, server)
    page.goto(f"{server.url}/jobs?type=noop&created_by=admin")
    page.get_by_role("button", name="Retry all failed jobs that match").click()
    expect(page.locator("#bulk-question")).to_have_text("Retry 2 failed job(s) matching this filter?")
    page.get_by_role("link", name="Back, change nothing").click()
    expect(page).to_have_url(re.compile(r"created_by=admin"))
    assert manager.list_jobs(type_name="noop", status="pending")[1] == 0  # the question changed nothing
    page.get_by_role("button", name="Retry all failed jobs that match").click()
    page.get_by_role("button", name="Retry 2 job(s)").click()
    expect(page.get_by_text("Retried 2 job(s) as new jobs.")).to_be_visible()
    retries, total = manager.list_jobs(type_name="noop", status="pending")
    assert total == 2 and {j.retry_of for j in retries} == {j.id for j in mine}
    assert theirs.id not in {j.retry_of for j in retries}
    page.get_by_role("button", name="Retry all failed jobs that match").click()
    expect(page.locator("#bulk-nothing")).to_be_visible()  # retried already: nothing left to retry


def test_viewer_sees_no_bulk_actions_and_cannot_post_them(page: Page, server: Any, manager: JobManager) -> None:
    job = manager.create("noop", {"items": 1}, created_by="admin")
    log_in(page, server, "viewer")
    page.goto(f"{server.url}/jobs?type=noop")
    expect(row(page, job.id)).to_be_visible()
    expect(page.get_by_role("button", name="Cancel selected")).to_have_count(0)
    expect(page.locator('input[name="job_id"]')).to_have_count(0)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    answer = page.request.post(f"{server.url}/web/bulk/cancel",
                               form={"csrf_token": str(token), "job_id": job.id, "confirm": "1"})
    assert answer.status == 403
    assert manager.get(job.id).status.value == "pending"


def test_job_page_shows_the_webhook_delivery(page: Page, server: Any, manager: JobManager) -> None:
    job = manager.create("noop", {"items": 1}, created_by="admin", webhook_url="http://127.0.0.1:9/<b>hook</b>")
    manager.control(job.id, "cancel")  # no worker runs here: the delivery stays queued
    log_in(page, server)
    page.goto(f"{server.url}/jobs/{job.id}")
    expect(page.locator("#job-webhook")).to_contain_text("http://127.0.0.1:9/<b>hook</b>: pending after 0 attempt(s)")


def test_a_short_id_in_the_address_opens_its_job(page: Page, server: Any, manager: JobManager) -> None:
    job = manager.create("noop", {"items": 1}, created_by="admin")
    log_in(page, server)
    page.goto(f"{server.url}/jobs/{job.id[:8]}")
    expect(page).to_have_url(re.compile(f"/jobs/{job.id}$"))
    answer = page.goto(f"{server.url}/jobs/{job.id[:4]}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("alert")).to_contain_text("at least 6")
