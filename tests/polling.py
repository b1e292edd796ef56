"""The one way the tests wait: poll a condition until a deadline.

A fixed sleep would make a test either slow or flaky; polling returns as
soon as the condition holds and fails with what it was waiting for.
Imported as ``tests.polling`` (the repository root is on the path).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float = 60.0, what: str = "condition") -> T:
    """Call ``predicate`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)  # poll with a deadline
