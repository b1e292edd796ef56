"""Uploaded chunks compressed with lz4, not pglz, on PostgreSQL

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 01:30:00

PostgreSQL compresses each 1 MiB chunk of an upload before storing it. With
its default method (pglz) that took about 0.3 s of the 0.6-0.9 s between a
56 MB voter file arriving and the ``202 Accepted``; lz4 takes 0.06 s and
stores the same file in slightly less space (docs/benchmarks.md). Only new
chunks are affected. A server built without lz4 (or older than PostgreSQL
14) keeps pglz: the change is skipped, not failed. SQLite does not compress.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _set_compression(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        DO $$ BEGIN
            EXECUTE 'ALTER TABLE upload_chunks ALTER COLUMN data SET COMPRESSION {method}';
        EXCEPTION WHEN feature_not_supported OR syntax_error THEN
            RAISE NOTICE 'upload_chunks.data keeps its compression: %', SQLERRM;
        END $$""")


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
