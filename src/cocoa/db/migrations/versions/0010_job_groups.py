"""Job groups and job input description (issue 17)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 16:10:00

* ``jobs.kind`` (``job`` | ``group``) and ``jobs.parent_id``: an upload over
  the per-job item limit becomes one group row and child jobs over row ranges
  of the same stored file (:mod:`cocoa.jobs.groups`). A group row is never
  claimed; its state is derived from its children.
* The one-running-job-per-type index now covers ``kind = 'job'`` only: a
  group is "processing" while one of its children is.
* ``uploads.compression`` (``zip`` | ``gzip`` | null): the stored blob is the
  expanded data file; this records what the client sent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ONE_PROCESSING = "uq_jobs_one_processing_per_type"


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="job"))
        batch_op.add_column(sa.Column("parent_id", sa.String(36), nullable=True))
        batch_op.create_index("ix_jobs_parent_id", ["parent_id"], unique=False)
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("compression", sa.String(16), nullable=True))
    op.drop_index(ONE_PROCESSING, table_name="jobs")
    where = sa.text("status = 'processing' AND kind = 'job'")
    op.create_index(ONE_PROCESSING, "jobs", ["type"], unique=True,
                    sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_index(ONE_PROCESSING, table_name="jobs")
    where = sa.text("status = 'processing'")
    op.create_index(ONE_PROCESSING, "jobs", ["type"], unique=True,
                    sqlite_where=where, postgresql_where=where)
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("compression")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_parent_id")
        batch_op.drop_column("parent_id")
        batch_op.drop_column("kind")
