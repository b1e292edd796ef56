"""The Workers page, the Jobs page's "no worker" banner and the job page's
history timeline (issue 19), in a real Chromium against ``cocoa serve
--no-worker`` on SQLite. Workers are registered directly in the registry,
so what the pages show is under the test's control; waits are Playwright's
auto-waiting ``expect`` assertions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.browser.test_web import XSS, log_in

from cocoa import auth
from cocoa.db.engine import make_engine
from cocoa.jobs import workers as registry
from cocoa.jobs.manager import JobManager

pytestmark = pytest.mark.browser

with contextlib.suppress(ImportError):  # without it the browser fixture skips (or fails in CI) first
    from playwright.sync_api import Page, expect


@pytest.fixture
def server(idle_server: Any) -> Any:
    return idle_server


@pytest.fixture(autouse=True)
def no_dialogs(dialogs: list[str]) -> Iterator[None]:
    yield
    assert dialogs == []  # hostile text never ran as script


def test_banner_until_a_live_worker_serves_the_type(page: Page, server: Any, manager: JobManager) -> None:
    manager.create("noop", {"items": 5}, created_by="admin")
    log_in(page, server)
    banner = page.locator("#no-worker-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("No worker is running")
    expect(banner).to_contain_text("1 pending noop job")
    expect(banner.locator("code").first).to_have_text("cocoa worker")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workers", exact=True).click()
    expect(page.get_by_role("heading", name="Workers", exact=True)).to_be_visible()
    expect(page.locator("#workers-live")).to_have_text("0 live workers.")
    expect(page.locator("#workers-table")).to_contain_text("No worker is registered")

    # A live worker of another type changes nothing for the noop job ...
    registry.register(manager.engine, "elsewhere:41:abc", ["noop_other"])
    page.reload()
    row = page.locator('tr[data-worker-id="elsewhere:41:abc"]')
    expect(row).to_contain_text("live")
    expect(row).to_contain_text("noop_other")
    expect(row).to_contain_text("idle")
    expect(page.locator("#workers-live")).to_have_text("1 live worker.")
    expect(page.locator("#no-worker-banner")).to_contain_text("1 pending noop job")

    # ... one that serves every type takes the banner away.
    registry.register(manager.engine, "here:42:def", None)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs", exact=True).click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    expect(page.locator("#no-worker-banner")).to_have_count(0)


def test_job_page_timeline_names_who_did_what(page: Page, server: Any, manager: JobManager) -> None:
    job_id = manager.create("noop", {"items": 5}, created_by="admin").id
    engine = make_engine(server.db_url)
    try:
        hostile_token, _ = auth.create_token(engine, "admin", XSS)
    finally:
        engine.dispose()
    response = httpx.post(f"{server.url}/api/v1/jobs/{job_id}/pause",
                          headers={"Authorization": f"Bearer {hostile_token}"})
    assert response.status_code == 200, response.text

    log_in(page, server)
    page.goto(f"{server.url}/jobs/{job_id}")
    timeline = page.locator("#job-history")
    expect(timeline.locator("li")).to_have_count(2)
    expect(timeline.locator('li[data-event="paused"]')).to_contain_text(f"by admin (token {XSS})")

    page.locator("#job-actions").get_by_role("button", name="Resume").click()
    expect(page.locator("#job-history li")).to_have_count(3)
    page.locator("#job-actions").get_by_role("button", name="Cancel").click()
    events = page.locator("#job-history li")
    expect(events).to_have_count(4)
    expect(events.nth(0)).to_contain_text("created")
    expect(events.nth(2)).to_contain_text("resumed by admin")
    expect(events.nth(3)).to_contain_text("cancelled by admin")
    assert [e.event for e in manager.history(job_id)] == ["created", "paused", "resumed", "cancelled"]
