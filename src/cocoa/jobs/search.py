"""Finding jobs: listing filters and job id prefixes.

Two things people ask for once there are hundreds of jobs (issue 19):

* a listing filtered by several statuses at once, a creator, a creation
  window and a free-text search (a job id, an id prefix or a file name) -
  :class:`JobFilter` and :func:`filter_where`, one WHERE for the API, the web
  page, bulk retry and the CLI alike;
* the short ids the CLI and the pages show (``df5c1adb``) accepted wherever a
  full id is: :func:`resolve_job_id` turns a unique prefix of at least
  :data:`MIN_PREFIX` hex characters into the id, and says which jobs an
  ambiguous prefix could mean rather than picking one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cocoa.db.tables import jobs, uploads
from cocoa.jobs.model import Status
from cocoa.jobs.store import JobNotFound
from cocoa.jobs.types import all_job_types

MIN_PREFIX = 6  # hex characters of an id prefix; fewer match too many jobs to be useful
MAX_CANDIDATES = 10  # ids listed for an ambiguous prefix
MAX_QUERY = 255

_ID_CHARS = re.compile(r"^[0-9a-f-]+$")
_FULL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class AmbiguousJobId(Exception):
    """A prefix that matches several jobs; ``candidates`` are (some of) their ids."""

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:MAX_CANDIDATES])
        more = " (and more)" if len(candidates) > MAX_CANDIDATES else ""
        super().__init__(f"The id prefix {prefix!r} matches several jobs: {shown}{more}; "
                         "give more characters of the id.")
        self.prefix = prefix
        self.candidates = candidates[:MAX_CANDIDATES]


class JobIdTooShort(JobNotFound):
    """A prefix shorter than :data:`MIN_PREFIX`: a not-found with a message that says why."""


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What a listing (or a bulk retry) matches. Empty fields match everything."""

    statuses: tuple[str, ...] = ()
    type_name: str | None = None
    created_by: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    q: str | None = None
    include_archived: bool = False
    include_hidden: bool = False

    def with_statuses(self, *statuses: str) -> JobFilter:
        return JobFilter(statuses, self.type_name, self.created_by, self.created_after,
                         self.created_before, self.q, self.include_archived, self.include_hidden)


def filter_where(spec: JobFilter) -> list[sa.ColumnElement[bool]]:
    """The WHERE of ``spec``: internal types (noop) and archived jobs are left
    out unless asked for, or unless a type is named."""
    where: list[sa.ColumnElement[bool]] = []
    if spec.statuses:
        where.append(jobs.c.status.in_(sorted(set(spec.statuses))))
    if spec.type_name:
        where.append(jobs.c.type == spec.type_name)
    elif not spec.include_hidden:
        where.append(jobs.c.type.in_(all_job_types()))
    if not spec.include_archived:
        where.append(jobs.c.archived_at.is_(None))
    if spec.created_by:
        where.append(jobs.c.created_by == spec.created_by)
    if spec.created_after is not None:
        where.append(jobs.c.created_at >= spec.created_after)
    if spec.created_before is not None:
        where.append(jobs.c.created_at < spec.created_before)
    if spec.q and spec.q.strip():
        where.append(_search(spec.q.strip()))
    return where


def _search(q: str) -> sa.ColumnElement[bool]:
    """A job id, an id prefix (6+ hex characters) or a file name substring."""
    text = q[:MAX_QUERY]
    pattern = "%" + _escape_like(text.lower()) + "%"
    named = sa.select(uploads.c.id).where(sa.func.lower(uploads.c.filename).like(pattern, escape="\\"))
    matches: list[sa.ColumnElement[bool]] = [jobs.c.id == text, jobs.c.upload_id.in_(named)]
    lowered = text.lower()
    if len(lowered) >= MIN_PREFIX and _ID_CHARS.match(lowered):
        matches.append(jobs.c.id.like(_escape_like(lowered) + "%", escape="\\"))
    return sa.or_(*matches)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def looks_like_full_id(ref: str) -> bool:
    return bool(_FULL_ID.match(ref))


def resolve_job_id(conn: sa.Connection, ref: str) -> str:
    """The id of the one job ``ref`` names: its full id or a unique prefix.

    Raises :class:`JobNotFound` (no such job; :class:`JobIdTooShort` for a
    prefix under :data:`MIN_PREFIX` characters) or :class:`AmbiguousJobId`.
    """
    text = ref.strip()
    if looks_like_full_id(text.lower()):
        found = conn.execute(sa.select(jobs.c.id).where(jobs.c.id == text.lower())).scalar()
        if found is None:
            raise JobNotFound(f"No job with id {text!r}.")
        return str(found)
    exact = conn.execute(sa.select(jobs.c.id).where(jobs.c.id == text)).scalar() if text else None
    if exact is not None:
        return str(exact)
    prefix = text.lower()
    if not prefix or not _ID_CHARS.match(prefix):
        raise JobNotFound(f"No job with id {text[:64]!r}.")
    if len(prefix.replace("-", "")) < MIN_PREFIX:
        raise JobIdTooShort(f"No job with id {text!r}; an id prefix needs at least {MIN_PREFIX} "
                            "characters to pick out one job.")
    query = (sa.select(jobs.c.id).where(jobs.c.id.like(_escape_like(prefix) + "%", escape="\\"))
             .order_by(jobs.c.id).limit(MAX_CANDIDATES + 1))
    matching: list[Any] = list(conn.execute(query).scalars().all())
    ids = [str(value) for value in matching]
    if not ids:
        raise JobNotFound(f"No job with id {text!r} and none whose id starts with it.")
    if len(ids) > 1:
        raise AmbiguousJobId(prefix, ids)
    return ids[0]


def parse_statuses(values: list[str]) -> tuple[str, ...]:
    """``status=failed&status=cancelled`` and ``status=failed,cancelled``
    alike; raises ValueError naming the unknown ones."""
    found: list[str] = []
    for value in values:
        found.extend(part.strip() for part in value.split(",") if part.strip())
    known = [s.value for s in Status]
    unknown = [s for s in found if s not in known]
    if unknown:
        raise ValueError(f"Unknown status {', '.join(map(repr, unknown))}; valid: {', '.join(known)}.")
    return tuple(dict.fromkeys(found))


def filter_summary(spec: JobFilter) -> dict[str, Any]:
    """The filter as a client sent it (for a bulk answer to echo back)."""
    return {
        "status": list(spec.statuses), "type": spec.type_name, "created_by": spec.created_by,
        "created_after": spec.created_after.isoformat() if spec.created_after else None,
        "created_before": spec.created_before.isoformat() if spec.created_before else None,
        "q": spec.q, "include_archived": spec.include_archived,
    }
