"""The version of the households table, for what is kept in memory between requests.

Every write to ``households`` sets ``updated_at`` and new rows take a higher
id, so ``(max(id), max(updated_at))`` changes whenever anything derived from
the table may: two index lookups instead of a scan. The map's point index
(:mod:`cocoa.browse.point_index`) and the search's street names
(:mod:`cocoa.browse.search`) are keyed by it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cocoa.db.tables import households


def households_version(conn: sa.Connection) -> tuple[int, datetime | None]:
    # Two statements: SQLite answers a lone max() from the index, not two in one.
    return (int(conn.scalar(sa.select(sa.func.max(households.c.id))) or 0),
            conn.scalar(sa.select(sa.func.max(households.c.updated_at))))
