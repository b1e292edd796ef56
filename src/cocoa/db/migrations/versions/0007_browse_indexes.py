"""Indexes for browsing what jobs produced (issue 20)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:50:00

* ``ix_households_lat_lon``: the map asks for the households in a view
  (``latitude BETWEEN .. AND longitude BETWEEN ..``) on every pan.
* ``ix_households_updated_at``: the version of the households table
  (``max(id), max(updated_at)``) that keys the map's cache of clustered
  views (since replaced by :mod:`cocoa.browse.versions`), in one index lookup.
* ``ix_voters_import_job``, ``ix_parcels_import_job``: "households this job
  created or changed" and a parcel import's parcels without a household.
* ``ix_voters_external_id``: search by voter id (the unique constraint leads
  with ``source``, which a person searching does not know).
* ``ix_parcels_lat``: parcels overlapping a view.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = (
    ("households", "ix_households_lat_lon", ["latitude", "longitude"]),
    ("households", "ix_households_updated_at", ["updated_at"]),
    ("voters", "ix_voters_import_job", ["import_job_id"]),
    ("voters", "ix_voters_external_id", ["external_id"]),
    ("parcels", "ix_parcels_import_job", ["import_job_id"]),
    ("parcels", "ix_parcels_lat", ["min_lat", "max_lat"]),
)


def upgrade() -> None:
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    for table, name, _columns in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
