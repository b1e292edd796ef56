"""claim indexes cover the claim order (created_at, id)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 19:50:00

A claim orders pending jobs by (created_at, id); the old index stopped at
created_at, so every claim sorted all pending jobs.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_claim")
        batch_op.create_index("ix_jobs_claim", ["status", "type", "created_at", "id"], unique=False)
        batch_op.create_index("ix_jobs_queue", ["status", "created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_queue")
        batch_op.drop_index("ix_jobs_claim")
        batch_op.create_index("ix_jobs_claim", ["status", "type", "created_at"], unique=False)
