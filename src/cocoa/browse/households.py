"""Households and voters as the browser shows them: lists, one household, one voter."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from cocoa.browse.filters import HouseholdFilter
from cocoa.browse.search import search
from cocoa.db.tables import geocode_selections, households, jobs, parcels, voters

_NAME_WORD = re.compile(r"[A-Z0-9'-]+")
SUMMARY_COLUMNS = (
    households.c.id, households.c.street_line, households.c.unit, households.c.city,
    households.c.state, households.c.zip_code, households.c.precinct, households.c.voter_count,
    households.c.latitude, households.c.longitude, households.c.geocode_status,
    households.c.geocode_provider, households.c.geocode_quality, households.c.parcel_id,
    households.c.parcel_link_method,
)
VOTER_COLUMNS = (
    voters.c.id, voters.c.source, voters.c.external_id, voters.c.first_name, voters.c.middle_name,
    voters.c.last_name, voters.c.name_suffix, voters.c.party, voters.c.status, voters.c.precinct,
    voters.c.birth_year, voters.c.res_street, voters.c.res_city, voters.c.res_zip,
    voters.c.household_id,
)


def plain(row: Any) -> dict[str, Any]:
    """A row as JSON-ready values (dates as ISO text)."""
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in row._mapping.items()}


def list_households(conn: sa.Connection, flt: HouseholdFilter, q: str | None, limit: int,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of households (best matches first when searching, else by id) and the total."""
    conds = flt.conditions(conn)
    if not q or not q.strip():
        total = conn.scalar(sa.select(sa.func.count()).select_from(households).where(*conds)) or 0
        rows = conn.execute(sa.select(*SUMMARY_COLUMNS).where(*conds).order_by(households.c.id)
                            .limit(limit).offset(offset))
        return [plain(r) for r in rows], int(total)
    ranked = [hit.household_id for hit in search(conn, q)]
    if conds and ranked:  # keep the ranking, drop what the filters exclude
        allowed: set[int] = set()
        for start in range(0, len(ranked), 900):
            chunk = ranked[start:start + 900]
            allowed.update(conn.scalars(sa.select(households.c.id).where(households.c.id.in_(chunk), *conds)))
        ranked = [hid for hid in ranked if hid in allowed]
    page = ranked[offset:offset + limit]
    by_id = {r.id: plain(r) for r in conn.execute(sa.select(*SUMMARY_COLUMNS)
                                                  .where(households.c.id.in_(page)))} if page else {}
    return [by_id[hid] for hid in page if hid in by_id], len(ranked)


def household_detail(conn: sa.Connection, household_id: int) -> dict[str, Any] | None:
    """One household with its voters, parcel and the jobs that touched it."""
    row = conn.execute(sa.select(households).where(households.c.id == household_id)).first()
    if row is None:
        return None
    detail = plain(row)
    detail["voters"] = [plain(v) for v in conn.execute(
        sa.select(*VOTER_COLUMNS).where(voters.c.household_id == household_id).order_by(voters.c.id))]
    detail["parcel"] = _parcel(conn, row.parcel_id, row.parcel_link_method)
    detail["jobs"] = _jobs(conn, household_id, row.parcel_id)
    return detail


def _parcel(conn: sa.Connection, parcel_id: int | None, method: str | None) -> dict[str, Any] | None:
    if parcel_id is None:
        return None
    found = conn.execute(sa.select(parcels.c.id, parcels.c.source, parcels.c.apn, parcels.c.situs_address,
                                   parcels.c.rep_lon, parcels.c.rep_lat, parcels.c.import_job_id)
                         .where(parcels.c.id == parcel_id)).first()
    if found is None:
        return None
    return {**plain(found), "link_method": method}


def _jobs(conn: sa.Connection, household_id: int, parcel_id: int | None) -> list[dict[str, Any]]:
    """Import jobs of its voters, the import of its parcel, the geocoding jobs that selected it."""
    how: dict[str, str] = {}
    for row in conn.execute(sa.select(voters.c.import_job_id).where(
            voters.c.household_id == household_id, voters.c.import_job_id.isnot(None)).distinct()):
        how[str(row[0])] = "imported its voters"
    if parcel_id is not None:
        job_id = conn.scalar(sa.select(parcels.c.import_job_id).where(parcels.c.id == parcel_id))
        if job_id:
            how.setdefault(job_id, "imported its parcel")
    for job_id in conn.scalars(sa.select(geocode_selections.c.job_id).where(
            geocode_selections.c.household_id == household_id)):
        how.setdefault(job_id, "geocoded it")
    if not how:
        return []
    rows = conn.execute(sa.select(jobs.c.id, jobs.c.type, jobs.c.status, jobs.c.created_at)
                        .where(jobs.c.id.in_(list(how))).order_by(jobs.c.created_at))
    return [{**plain(r), "how": how[r.id]} for r in rows]


def list_voters(conn: sa.Connection, q: str | None, household_id: int | None, limit: int,
                offset: int) -> tuple[list[dict[str, Any]], int]:
    """Voters of one household, or matching a search (name or voter id)."""
    conds: list[sa.ColumnElement[bool]] = []
    if household_id is not None:
        conds.append(voters.c.household_id == household_id)
    if q and q.strip():
        text = q.strip()[:128]
        words = _NAME_WORD.findall(text.upper())  # letters only: no LIKE wildcards from the query
        first, last = sa.func.upper(voters.c.first_name), sa.func.upper(voters.c.last_name)
        by_name = sa.and_(*(sa.or_(first.like(f"{w}%"), last.like(f"{w}%")) for w in words[:4]))
        conds.append(sa.or_(voters.c.external_id.in_({text, text.upper()}), by_name))
    total = conn.scalar(sa.select(sa.func.count()).select_from(voters).where(*conds)) or 0
    rows = conn.execute(sa.select(*VOTER_COLUMNS).where(*conds).order_by(voters.c.id)
                        .limit(limit).offset(offset))
    return [plain(r) for r in rows], int(total)


def voter_detail(conn: sa.Connection, voter_id: int) -> dict[str, Any] | None:
    """One voter with every column of its source row (``record``)."""
    row = conn.execute(sa.select(voters).where(voters.c.id == voter_id)).first()
    return None if row is None else plain(row)
