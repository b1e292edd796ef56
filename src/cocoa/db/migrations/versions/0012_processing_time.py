"""Processing time of jobs (issue 21)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 16:10:00

No schema change: ``jobs.processing_seconds`` (created in 0001 for the time
limit) holds the processing time, banked at every batch commit and when a
lease ends (``cocoa.jobs.sql.boundary_expressions`` restarts
``run_started_at`` at each commit). The public job object shows it as
``processing_seconds`` (with the run in progress added) beside
``elapsed_seconds``. Rows written before this revision are already right:
the column has always been brought up to date when a run ends. The revision
stays so the chain of this round's stubs is unbroken.
"""

from __future__ import annotations

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change (see the module docstring)."""


def downgrade() -> None:
    """Nothing to undo."""
