"""Webhooks outbox (issue 19)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 16:10:00

(stub: filled in by the work for the issue)
"""

from __future__ import annotations

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
