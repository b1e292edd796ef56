"""The job listing's filters as query parameters, shared by the API listing,
bulk retry and the web Jobs page.

Why one parser: the page keeps its filters in the URL and its "retry all
failed matching this filter" button posts the same parameters to the bulk
endpoint, so the three must read ``status=failed,cancelled``, a creator, a
creation window and ``q`` exactly alike. Bad values are 422s that say what to
send instead (an unknown status lists the valid ones; a bad date names the
format), never an empty page that looks like "no jobs".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query

from cocoa.api.errors import ApiError
from cocoa.jobs.search import MAX_QUERY, JobFilter, parse_statuses
from cocoa.jobs.types import all_job_types

DATE_FORMAT_HINT = "an ISO 8601 date or date-time such as 2026-12-01 or 2026-12-01T09:30:00Z"


def parse_when(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or date-time, as an aware UTC datetime (naive: UTC)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    except ValueError:
        raise ApiError(422, f"{name} must be {DATE_FORMAT_HINT} (got {text[:64]!r}).", "invalid_datetime",
                       [{"location": ["query", name], "message": f"must be {DATE_FORMAT_HINT}",
                         "type": "datetime_parsing"}]) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. year 9999 with a negative offset
        raise ApiError(422, f"{name} is out of range (got {text[:64]!r}).", "invalid_datetime") from None


def check_type(type_name: str | None) -> None:
    if type_name is not None and type_name not in all_job_types(include_hidden=True):
        public = all_job_types()  # internal types (noop) are accepted but never advertised
        raise ApiError(422, f"Unknown job type {type_name!r}; known types: {', '.join(public)}.",
                       "unknown_job_type", {"type": type_name, "valid": public})


def build_filter(
    status: list[str] | None = None, type_name: str | None = None, created_by: str | None = None,
    created_after: str | None = None, created_before: str | None = None, q: str | None = None,
    include_archived: bool = False,
) -> JobFilter:
    """A :class:`JobFilter` from raw query values, or a 422 saying what to fix."""
    try:
        statuses = parse_statuses(status or [])
    except ValueError as exc:
        raise ApiError(422, str(exc), "validation_error", [{"location": ["query", "status"],
                                                           "message": str(exc), "type": "enum"}]) from None
    check_type(type_name)  # "" too: an empty type is a typo, not "any type"
    after = parse_when(created_after, "created_after")
    before = parse_when(created_before, "created_before")
    if after is not None and before is not None and after >= before:
        raise ApiError(422, "created_after must be earlier than created_before.", "invalid_window",
                       [{"location": ["query", "created_after"], "message": "after the window's end",
                         "type": "value_error"}])
    for name, value in (("q", q), ("created_by", created_by)):
        if value is not None and "\x00" in value:
            raise ApiError(422, f"{name} must not contain NUL characters.", "invalid_query")
    return JobFilter(statuses, type_name, (created_by or "").strip() or None, after, before,
                     (q or "").strip()[:MAX_QUERY] or None, include_archived)


async def job_filter_query(
    status: Annotated[list[str] | None, Query(
        description="Only jobs in these states: repeat the parameter (`status=failed&status=cancelled`) "
        "or give a comma list (`status=failed,cancelled`).")] = None,
    type: Annotated[str | None, Query(description="Only jobs of this type, e.g. `import_voters`.",
                                      max_length=64)] = None,
    created_by: Annotated[str | None, Query(description="Only jobs this user created.", max_length=255)] = None,
    created_after: Annotated[str | None, Query(
        description="Only jobs created at or after this ISO 8601 date or date-time (UTC unless an "
        "offset is given).", max_length=64)] = None,
    created_before: Annotated[str | None, Query(
        description="Only jobs created before this ISO 8601 date or date-time.", max_length=64)] = None,
    q: Annotated[str | None, Query(
        description="Search: a job id, a unique id prefix of 6+ hex characters, or part of the "
        "uploaded file's name.", max_length=MAX_QUERY)] = None,
    include_archived: Annotated[bool, Query(description="Also list jobs archived by retention.")] = False,
) -> JobFilter:
    """The listing filters of a request (a FastAPI dependency; ``async``
    because it does no I/O, so the listing pays no threadpool hop for it)."""
    return build_filter(status, type, created_by, created_after, created_before, q, include_archived)


JobFilterQuery = Annotated[JobFilter, Depends(job_filter_query)]
