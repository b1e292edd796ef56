"""Job groups and job input description (issue 17)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 16:10:00

(stub: filled in by the work for the issue)
"""

from __future__ import annotations

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
