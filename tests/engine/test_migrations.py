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


def test_uploads_are_compressed_with_lz4_on_postgres(pg_url: str) -> None:
    """Migration 0004 (this server is built with lz4): chunks stored after it
    use lz4, and read back byte for byte; households leave room for HOT
    updates."""
    from cocoa.db.migrate import upgrade

    upgrade(pg_url)
    engine = sa.create_engine(pg_url)
    data = bytes(range(256)) * 8192  # compressible, 2 MiB
    try:
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT reloptions FROM pg_class "
                                        "WHERE relname = 'households'").scalar() == ["fillfactor=85"]
            method = conn.exec_driver_sql(
                "SELECT attcompression FROM pg_attribute WHERE attrelid = "
                "'upload_chunks'::regclass AND attname = 'data'").scalar_one()
            assert method == "l"
            conn.exec_driver_sql("INSERT INTO uploads (id, size, sha256, chunk_count, created_at) "
                                 "VALUES ('u', 0, '', 1, now())")
            conn.exec_driver_sql("INSERT INTO upload_chunks (upload_id, seq, data) "
                                 "VALUES ('u', 0, %(data)s)", {"data": data})
            stored = conn.exec_driver_sql(
                "SELECT pg_column_compression(data), data FROM upload_chunks").one()
        assert stored[0] == "lz4" and bytes(stored[1]) == data
    finally:
        engine.dispose()


def test_parcel_index_holds_linked_households_only(db_engine: sa.Engine) -> None:
    """Migration 0004: unlinked households (all of them until a parcel import)
    get no entry in ``ix_households_parcel``."""
    with db_engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            definition = conn.exec_driver_sql("SELECT indexdef FROM pg_indexes "
                                              "WHERE indexname = 'ix_households_parcel'").scalar()
        else:
            definition = conn.exec_driver_sql("SELECT sql FROM sqlite_master "
                                              "WHERE name = 'ix_households_parcel'").scalar()
    assert "WHERE" in str(definition) and "parcel_id IS NOT NULL" in str(definition)
