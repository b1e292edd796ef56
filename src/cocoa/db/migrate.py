"""Alembic, driven from code so that ``cocoa db upgrade`` needs no ini file.

Decision: ``cocoa serve`` and ``cocoa worker`` never migrate on their own. They
check that the schema is current and refuse to start with a message naming the
command to run. Migrating is an operator's deliberate step (several workers on
several hosts must not race to alter one schema). ``make run`` runs the
upgrade for you.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cocoa.db.engine import make_engine, normalise_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaNotCurrent(RuntimeError):
    pass


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    engine = make_engine(url)  # creates the SQLite directory if needed
    engine.dispose()
    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_current(engine: sa.Engine, url: str) -> None:
    """Raise :class:`SchemaNotCurrent` with the fix when the schema lags."""
    current = current_revision(engine)
    head = head_revision(url)
    if current != head:
        raise SchemaNotCurrent(
            f"Database schema is at {current or 'nothing (empty database)'}, "
            f"code expects {head}. Run `cocoa db upgrade` first."
        )
