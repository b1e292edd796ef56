"""The household filters every browse view shares (list, map, job results).

One dataclass turned into SQL conditions, so the Households page, the Map
page and their API endpoints always mean the same thing by "geocoded" or
"touched by job X".
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from cocoa.db.tables import households, jobs, parcels, voters
from cocoa.jobtypes.geocode_selection import selected_households


class UnknownJob(LookupError):
    """The ``job_id`` filter names no job."""


@dataclass(frozen=True, slots=True)
class HouseholdFilter:
    city: str | None = None
    zip_code: str | None = None
    precinct: str | None = None
    geocoded: bool | None = None  # has coordinates (status matched) or not
    linked: bool | None = None  # linked to a parcel or not
    job_id: str | None = None  # created or changed by this job

    def conditions(self, conn: sa.Connection) -> list[sa.ColumnElement[bool]]:
        """SQL conditions; ``conn`` looks up the job's type for ``job_id``."""
        conds: list[sa.ColumnElement[bool]] = []
        for name in ("city", "zip_code", "precinct"):
            value = getattr(self, name)
            if value:  # imports store these upper case; compare case-insensitively anyway
                conds.append(sa.func.upper(households.c[name]) == value.strip().upper())
        if self.geocoded is not None:
            matched = households.c.latitude.isnot(None) & (households.c.geocode_status == "matched")
            conds.append(matched if self.geocoded else ~matched)
        if self.linked is not None:
            linked = households.c.parcel_id.isnot(None)
            conds.append(linked if self.linked else households.c.parcel_id.is_(None))
        if self.job_id:
            conds.append(touched_by(conn, self.job_id))
        return conds

    def query_args(self) -> dict[str, str]:
        """The filter as query-string arguments (for links between pages)."""
        args = {name: getattr(self, name) for name in ("city", "zip_code", "precinct", "job_id")}
        out = {k: v for k, v in args.items() if v}
        for name in ("geocoded", "linked"):
            value = getattr(self, name)
            if value is not None:
                out[name] = "true" if value else "false"
        return out


def job_type(conn: sa.Connection, job_id: str) -> str:
    found = conn.scalar(sa.select(jobs.c.type).where(jobs.c.id == job_id))
    if found is None:
        raise UnknownJob(job_id)
    return str(found)


def touched_by(conn: sa.Connection, job_id: str) -> sa.ColumnElement[bool]:
    """Households a job created or changed, by what each job type writes:

    * ``import_voters``: households of the voters it wrote last
      (``voters.import_job_id``; a later import of the same voter takes over);
    * ``parcel_import``: households linked to a parcel it wrote;
    * ``geocode_households``: its fixed selection (``geocode_selections``).
    """
    kind = job_type(conn, job_id)
    if kind == "import_voters":
        return households.c.id.in_(
            sa.select(voters.c.household_id).where(voters.c.import_job_id == job_id))
    if kind == "parcel_import":
        return households.c.parcel_id.in_(
            sa.select(parcels.c.id).where(parcels.c.import_job_id == job_id))
    if kind == "geocode_households":
        return households.c.id.in_(selected_households(conn, job_id))  # a group's: its children's
    return sa.false()
