"""Household-parcel links in any order (issue 15)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 09:20:00

* ``ix_parcels_updated_at``: a geocoding job links the households it places
  to the parcel containing their point, against the parcels in memory; each
  batch checks ``max(id), max(updated_at)`` of ``parcels`` to know whether
  they changed since it loaded them. With the index that is two index
  lookups instead of a scan of every parcel per batch.

No column is added: ``parcel_link_method`` (16 characters) already holds the
new ``building`` method, and the building key of a household is computed
from its ``address_key`` where it is needed (the voter import, the parcel
import), so it can never disagree with the key it derives from.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("parcels", schema=None) as batch_op:
        batch_op.create_index("ix_parcels_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("parcels", schema=None) as batch_op:
        batch_op.drop_index("ix_parcels_updated_at")
