"""The linking phase of ``parcel_import``: households walked by id, each
linked to a parcel of the imported source by the rule of
:mod:`cocoa.domain.parcel_links` (address, building, location).

Checkpoint ``{"phase": "linking", "after": household_id, ...}``; the key map
and the STRtree of the source's parcels are built once per run
(``ctx.cache``), so the work is households x log(parcels).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from cocoa.db.bulk import bind, bulk_for
from cocoa.db.engine import reading
from cocoa.db.tables import households, parcels
from cocoa.domain import parcel_links as pl
from cocoa.jobs.types import Batch, Checkpoint, RunContext

_INDEX_KEY = "parcel_import.link_index"


def considered_by(source: str) -> sa.ColumnElement[bool]:
    """Households this source may (re)link: unlinked, or linked to one of
    its own parcels. Links to another source's parcels are left alone."""
    own = sa.exists().where(parcels.c.id == households.c.parcel_id, parcels.c.source == source)
    return sa.or_(households.c.parcel_id.is_(None), own)  # a primary-key probe per row


def _link_index(ctx: RunContext) -> pl.ParcelIndex:
    """This source's parcels, loaded once per run (``ctx.cache``)."""
    index = ctx.cache.get(_INDEX_KEY)
    if not isinstance(index, pl.ParcelIndex):
        with reading(ctx.engine) as conn:
            index = pl.load_index(conn, ctx.params["source"])
        ctx.cache[_INDEX_KEY] = index
    return index


def link_batch(ctx: RunContext, checkpoint: Checkpoint) -> Batch:
    source = ctx.params["source"]
    query = (sa.select(households.c.id, households.c.address_key, households.c.latitude,
                       households.c.longitude, households.c.parcel_id,
                       households.c.parcel_link_method)
             .where(households.c.id > int(checkpoint["after"]), considered_by(source))
             .order_by(households.c.id).limit(ctx.batch_size))
    with reading(ctx.engine) as conn:  # plain tuples: Row attribute access is slow
        rows: list[tuple[Any, ...]] = [tuple(r) for r in conn.execute(query)]
    decisions, reasons = pl.decide(_link_index(ctx), [(r[1], r[2], r[3]) for r in rows])
    changes = [{"hid": r[0], "pid": pid, "method": method}
               for r, (pid, method) in zip(rows, decisions, strict=True)
               if (r[4], r[5]) != (pid, method)]
    seen = int(checkpoint.get("seen", 0)) + len(rows)
    done = len(rows) < ctx.batch_size
    features = int(checkpoint["features"])
    total = features + (seen if done else max(int(checkpoint["considered"]), seen))
    return Batch(
        checkpoint={**checkpoint, "after": rows[-1][0] if rows else checkpoint["after"],
                    "seen": seen},
        processed=len(rows), succeeded=len(rows), phase="linking", total=total, done=done,
        write=lambda conn: _apply_links(conn, changes), counts=link_counts(decisions, reasons),
    )


def link_counts(decisions: list[pl.Link], reasons: list[str | None]) -> dict[str, int]:
    """How the households this job considered are linked after it, and why
    the others are not (both reasons mean no parcel of this source has their
    address or their building's address)."""
    counts = {f"households_linked_{m}": sum(method == m for _, method in decisions)
              for m in pl.METHODS}
    counts["households_unlinked"] = sum(pid is None for pid, _ in decisions)
    counts["households_unlinked_not_geocoded"] = reasons.count(pl.NOT_GEOCODED)
    counts["households_unlinked_outside_parcels"] = reasons.count(pl.OUTSIDE_PARCELS)
    return counts


def _apply_links(conn: sa.Connection, changes: list[dict[str, Any]]) -> None:
    """One driver-level executemany: Core would compile and process every row's
    parameters, for the same few columns (see ``parcel_import._upsert``)."""
    if not changes:
        return
    mark = bulk_for(conn).placeholder
    stamp = bind(conn, households.c.updated_at, datetime.now(UTC))
    conn.exec_driver_sql(
        f"UPDATE households SET parcel_id = {mark}, parcel_link_method = {mark}, "
        f"updated_at = {mark} WHERE id = {mark}",
        [(c["pid"], c["method"], stamp, c["hid"]) for c in changes])
