"""Original line of rejected rows (issue 17)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 16:10:00

``job_errors.original``: the text of the input item as it was in the file
(a voter file's line, decoded; a parcel feature's properties), kept for
rejected items only, so ``GET /jobs/{id}/errors.csv`` can hand the rows back
to be fixed and re-imported. Nullable: warnings, older errors and items
whose text is not cheap to keep have none. SQLite adds a nullable column in
place, so ``batch_alter_table`` does not need to rebuild the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_errors") as batch:
        batch.add_column(sa.Column("original", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_errors") as batch:
        batch.drop_column("original")
