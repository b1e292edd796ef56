"""Migrations and ``tables.py`` must describe the same schema on both backends."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cocoa.db.migrate import SchemaNotCurrent, check_current, head_revision
from cocoa.db.tables import metadata


def test_migrated_schema_matches_the_tables(db_engine: sa.Engine, db_url: str) -> None:
    with db_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    check_current(db_engine, db_url)
    assert head_revision(db_url) is not None


def test_empty_database_is_reported_not_current(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    try:
        check_current(engine, sqlite_url)
    except SchemaNotCurrent as exc:
        assert "cocoa db upgrade" in str(exc)
    else:
        raise AssertionError("an empty database passed the schema check")
