"""voters.record is json, not jsonb, on PostgreSQL

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 23:20:00

The source record is written once per voter and read rarely, as a whole;
jsonb's binary conversion of a 67-key record was the largest single part of
the server's work in a voter import (see docs/benchmarks.md). ``json``
still validates the text and keeps ``record->>'COLUMN'`` working.
SQLite stores JSON as text either way, so only PostgreSQL changes.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE voters ALTER COLUMN record TYPE json USING record::json")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE voters ALTER COLUMN record TYPE jsonb USING record::jsonb")
