"""What a job left to act on: the households a geocoding job could not place,
the households and parcels a parcel import could not link.

These read the households' *current* state: a household the job could not
place but a later job did is no longer listed, which is what someone
deciding what to do next wants to see.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from cocoa.browse.filters import job_type
from cocoa.db.tables import geocode_selections, households, job_errors, parcels
from cocoa.jobtypes.geocode_selection import selection_condition

GEOCODE_KINDS = {"unmatched": ("no_match", "tie", "error"), "no_match": ("no_match",),
                 "tie": ("tie",), "error": ("error",)}
PARCEL_KINDS = ("unlinked_households", "parcels_without_households")
KINDS = {"geocode_households": tuple(GEOCODE_KINDS), "parcel_import": PARCEL_KINDS}
REASONS = {
    "no_match": "The provider found no address like this one.",
    "tie": "The provider found several equally good candidates and could not choose.",
    "error": "The provider answered with an error.",
    None: "Not geocoded yet (the job has not reached it, or it was cancelled).",
}
HOUSEHOLD_FIELDS = ("id", "street_line", "unit", "city", "state", "zip_code", "precinct", "voter_count",
                    "geocode_status", "geocode_provider", "reason")
PARCEL_FIELDS = ("id", "source", "apn", "situs_address", "rep_lon", "rep_lat")


class NoResults(ValueError):
    """The job's type has no such result list."""


def kinds_for(conn: sa.Connection, job_id: str) -> tuple[str, tuple[str, ...]]:
    """The job's type and its result lists (raises UnknownJob)."""
    kind = job_type(conn, job_id)
    return kind, KINDS.get(kind, ())


def result_page(conn: sa.Connection, job_id: str, kind: str | None, limit: int | None,
                offset: int) -> dict[str, Any]:
    """``{"job_type", "kind", "kinds", "items", "total", "fields"}`` for one list."""
    job_kind, kinds = kinds_for(conn, job_id)
    if not kinds:
        raise NoResults(f"A {job_kind} job has no result lists; geocoding and parcel import jobs do.")
    kind = kind or kinds[0]
    if kind not in kinds:
        raise NoResults(f"A {job_kind} job's result lists are {', '.join(kinds)}; not {kind!r}.")
    if kind in GEOCODE_KINDS:
        items, total = _unmatched(conn, job_id, GEOCODE_KINDS[kind], limit, offset)
        fields: tuple[str, ...] = HOUSEHOLD_FIELDS
    elif kind == "unlinked_households":
        items, total = _unlinked_households(conn, job_id, limit, offset)
        fields = HOUSEHOLD_FIELDS[:-3]
    else:
        items, total = _lonely_parcels(conn, job_id, limit, offset)
        fields = PARCEL_FIELDS
    return {"job_type": job_kind, "kind": kind, "kinds": list(kinds), "items": items, "total": total,
            "fields": list(fields)}


def _page(query: sa.Select[Any], limit: int | None, offset: int) -> sa.Select[Any]:
    return query.limit(limit).offset(offset) if limit is not None else query.offset(offset)


def _unmatched(conn: sa.Connection, job_id: str, statuses: tuple[str, ...], limit: int | None,
               offset: int) -> tuple[list[dict[str, Any]], int]:
    status = households.c.geocode_status
    # "unmatched" also lists what the job never reached (a cancelled or failed run).
    cond = status.in_(statuses) if len(statuses) == 1 else sa.or_(status.in_(statuses), status.is_(None))
    base = (sa.select(*(households.c[f] for f in HOUSEHOLD_FIELDS[:-1]))
            .join(geocode_selections, geocode_selections.c.household_id == households.c.id)
            .where(selection_condition(conn, job_id), cond))  # a group's: its children's ranges
    total = int(conn.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0)
    rows = [dict(r._mapping) for r in conn.execute(_page(base.order_by(geocode_selections.c.seq), limit, offset))]
    messages = _error_messages(conn, job_id, [r["id"] for r in rows if r["geocode_status"] == "error"])
    for row in rows:
        row["reason"] = messages.get(row["id"]) or REASONS.get(row["geocode_status"], REASONS[None])
    return rows, total


def _error_messages(conn: sa.Connection, job_id: str, ids: list[int]) -> dict[int, str]:
    """The job's own item error for each household, when it recorded one."""
    if not ids:
        return {}
    refs = {f"household {i}": i for i in ids}
    query = (sa.select(job_errors.c.item_ref, job_errors.c.message)
             .where(job_errors.c.job_id == job_id, job_errors.c.item_ref.in_(list(refs)))
             .order_by(job_errors.c.id))
    return {refs[r.item_ref]: r.message for r in conn.execute(query)}


def _unlinked_households(conn: sa.Connection, job_id: str, limit: int | None,
                         offset: int) -> tuple[list[dict[str, Any]], int]:
    """Every household still without a parcel (a parcel import links across
    the whole table, so what it left unlinked is the whole table's rest)."""
    base = sa.select(*(households.c[f] for f in HOUSEHOLD_FIELDS[:-3])).where(households.c.parcel_id.is_(None))
    total = int(conn.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0)
    rows = conn.execute(_page(base.order_by(households.c.id), limit, offset))
    return [dict(r._mapping) for r in rows], total


def _lonely_parcels(conn: sa.Connection, job_id: str, limit: int | None,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
    """The job's parcels that no household is linked to."""
    linked = sa.exists(sa.select(households.c.id).where(households.c.parcel_id == parcels.c.id))
    base = (sa.select(*(parcels.c[f] for f in PARCEL_FIELDS))
            .where(parcels.c.import_job_id == job_id, ~linked))
    total = int(conn.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0)
    rows = conn.execute(_page(base.order_by(parcels.c.id), limit, offset))
    return [dict(r._mapping) for r in rows], total


def csv_text(fields: Iterable[str], items: Iterable[dict[str, Any]]) -> str:
    """CSV for a spreadsheet. A cell starting with ``= + - @`` gets a leading
    apostrophe: addresses come from files anyone may have written, and a
    spreadsheet would run such a cell as a formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    names = list(fields)
    writer.writerow(names)
    for item in items:
        writer.writerow([_cell(item.get(name)) for name in names])
    return out.getvalue()


def _cell(value: Any) -> str:
    if not isinstance(value, str):  # numbers stay numbers (a longitude is negative)
        return "" if value is None else str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
