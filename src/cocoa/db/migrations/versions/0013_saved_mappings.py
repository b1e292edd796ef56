"""Saved column mappings for voter imports (issue 17)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 16:10:00

* ``saved_mappings``: a voter file column mapping (our field -> their
  column) saved by name, so ``mapping=<name>`` reuses it for the next export
  of the same vendor.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTCDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "saved_mappings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("mapping", JSONType, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_saved_mappings"),
    )


def downgrade() -> None:
    op.drop_table("saved_mappings")
