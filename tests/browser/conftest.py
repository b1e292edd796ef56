"""The one browser set-up every browser test module shares.

Playwright drives Debian's ``/usr/bin/chromium`` (Playwright's own browser
download is not used). Without that binary the tests skip on a developer
machine and FAIL when ``CI`` is set, so a CI image that lost its browser
cannot pass silently.

Fixtures: ``browser`` (one Chromium per module), ``server`` (the real app on
SQLite with a worker; a module overrides it, e.g. with ``idle_server`` to keep
jobs where its tests put them), ``manager`` on the server's database, and a
fresh ``context`` and ``page`` per test whose JavaScript dialogs are recorded
in ``dialogs`` (and dismissed): a test asserts that none appeared.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tests.conftest as root

from cocoa.config import Settings
from cocoa.db.engine import make_engine
from cocoa.jobs.manager import JobManager

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PAGE_TIMEOUT_MS = 15_000  # a page's auto-waits; the map draws the whole demo town within it

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - playwright is a test dependency
    sync_playwright = None


def require_chromium() -> None:
    """Fail in CI, skip elsewhere, when the browser (or Playwright) is missing."""
    missing = None
    if sync_playwright is None:
        missing = "the playwright Python package is not installed"
    elif not CHROMIUM.exists():
        missing = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Browser tests are required in CI: {missing}")
    pytest.skip(f"{missing}; set CI=true to make this a failure")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def server(sqlite_live_server: Any) -> Any:
    """The real app under Uvicorn on SQLite, with a worker."""
    return sqlite_live_server


@pytest.fixture
def idle_server(sqlite_url: str, tmp_path: Path) -> Iterator[Any]:
    """``cocoa serve --no-worker`` on SQLite: jobs stay exactly where a test puts them."""
    yield from root.serving(sqlite_url, tmp_path, worker=False)


@pytest.fixture
def manager(server: Any) -> Iterator[JobManager]:
    engine = make_engine(server.db_url)
    yield JobManager(engine, Settings(database_url=server.db_url))
    engine.dispose()


@pytest.fixture
def viewport() -> dict[str, int]:
    """The window size of ``context``; a module whose page needs more room overrides it."""
    return {"width": 1280, "height": 900}


@pytest.fixture
def context(browser: Browser, server: Any, viewport: dict[str, int]) -> Iterator[BrowserContext]:
    """Depends on ``server`` so it closes first: an open event stream would
    otherwise hold up the server's graceful shutdown."""
    ctx = browser.new_context(viewport=viewport)
    ctx.set_default_timeout(PAGE_TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def dialogs() -> list[str]:
    return []


@pytest.fixture
def page(context: BrowserContext, dialogs: list[str]) -> Page:
    """A page that records (and dismisses) any JavaScript dialog: none may appear."""
    new = context.new_page()

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    new.on("dialog", on_dialog)
    return new
