"""The one Chromium a browser test module shares (module scope), for the
modules that need no set-up of their own; ``test_web.py`` holds the rules
(Debian's binary, fail in CI and skip elsewhere when it is missing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.test_web import CHROMIUM, CHROMIUM_ARGS, require_chromium, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()
