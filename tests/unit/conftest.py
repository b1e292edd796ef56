"""Fixtures for the unit tests that run the ``cocoa`` command in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import migrated_manager

from cocoa.config import get_settings
from cocoa.jobs.manager import JobManager


@pytest.fixture
def local_db(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobManager]:
    """A migrated database the in-process ``cocoa`` uses, on each backend: no
    server and no stored credentials, so every command goes to the database."""
    manager = migrated_manager(db_url)
    monkeypatch.setenv("COCOA_DATABASE_URL", db_url)
    monkeypatch.setenv("COCOA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("COCOA_URL", raising=False)
    monkeypatch.delenv("COCOA_TOKEN", raising=False)
    get_settings.cache_clear()  # the settings are read from the environment just set
    yield manager
    get_settings.cache_clear()
    manager.engine.dispose()
