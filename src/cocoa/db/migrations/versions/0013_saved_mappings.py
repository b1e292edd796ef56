"""Saved column mappings for voter imports (issue 17)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 16:10:00

(stub: filled in by the work for the issue)
"""

from __future__ import annotations

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
