"""Which households a ``geocode_households`` job covers: its params checked,
and the selection they choose fixed as ``geocode_selections`` rows.

Fixing the selection at creation makes the total exact, and a resumed or
retried attempt walks the same list even while imports change the
households table (see :mod:`cocoa.jobtypes.geocode_households`).

A selection above ``max_items_per_job`` (up to ``max_items_per_group``)
becomes a job group (:mod:`cocoa.jobs.groups`). The snapshot is written once,
under the group's id; each child walks its ``item_range`` (1-based, so seq
``first-1 .. last-1``) of the snapshot its ``selection_of`` param names. A
retried group's children keep that param, so they re-run their ranges of the
original snapshot. :func:`slice_of` and :func:`selected_households` are the
one place that knows this layout.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cocoa.db.tables import geocode_selections, households, jobs
from cocoa.jobs.types import JobValidationError, Params
from cocoa.jobtypes.requests import GEOCODE_FILTERS, GEOCODE_HOUSEHOLDS
from cocoa.providers import GeocodeStatus, ProviderConfigError, UnknownProvider, parse_chain

FILTERS = tuple(field.name for field in GEOCODE_FILTERS)
KNOWN_PARAMS = GEOCODE_HOUSEHOLDS.names
SELECTION_OF = "selection_of"  # in a group child's params: the job that owns the snapshot


def invalid(message: str, code: str, details: Any = None) -> JobValidationError:
    return JobValidationError(message, code=code, status=422, details=details)


def parse_params(raw: dict[str, Any], max_items: int) -> Params:
    """Check and normalise the request body. The output is a valid input
    again (the retry endpoint re-validates stored params). ``max_items``
    bounds ``limit``: the whole request's limit (``max_items_per_group``),
    since a selection above the per-job limit runs as a group."""
    unknown = sorted(set(raw) - set(KNOWN_PARAMS))
    if unknown:
        raise invalid(f"Unknown parameter(s): {', '.join(unknown)}; known: "
                       f"{', '.join(KNOWN_PARAMS)}", "unknown_parameter",
                       {"unknown": unknown, "known": list(KNOWN_PARAMS)})
    params: Params = {name: _filter_value(name, raw.get(name)) for name in FILTERS}
    only_missing = raw.get("only_missing", True)
    if not isinstance(only_missing, bool):
        raise invalid("only_missing must be true or false", "invalid_only_missing")
    params["only_missing"] = only_missing
    params["limit"] = _limit(raw.get("limit"), max_items)
    params["provider"] = _provider_spec(raw.get("provider"))
    # The households an earlier geocoding job left without a match (no_match,
    # tie, error): "geocode just those with another provider" (issue 20).
    # Only when given, so the params of every other job stay as they were.
    unmatched_in_job = _filter_value("unmatched_in_job", raw.get("unmatched_in_job"))
    if unmatched_in_job is not None:
        params["unmatched_in_job"] = unmatched_in_job
    return params


def _filter_value(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string", f"invalid_{name}")
    return value.strip() or None


def _limit(value: Any, max_items: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= max_items:
        raise invalid(f"limit must be a whole number from 1 to {max_items:,}", "invalid_limit",
                       {"min": 1, "max": max_items})
    return value


def _provider_spec(value: Any) -> str:
    if value is not None and not isinstance(value, str):
        raise invalid("provider must be a string such as 'local' or 'local,census'",
                       "unknown_provider")
    try:
        return ",".join(parse_chain(value))
    except UnknownProvider as exc:
        raise invalid(str(exc), "unknown_provider", {"valid": exc.valid}) from None
    except ProviderConfigError as exc:
        raise invalid(str(exc), "invalid_provider") from None


def _conditions(conn: sa.Connection, params: Params) -> list[sa.ColumnElement[bool]]:
    conds: list[sa.ColumnElement[bool]] = [
        sa.func.upper(households.c[name]) == sa.func.upper(sa.literal(params[name]))
        for name in FILTERS if params.get(name) is not None
    ]
    if params.get("unmatched_in_job"):
        conds.append(households.c.id.in_(selected_households(conn, params["unmatched_in_job"])))
        conds.append(sa.or_(households.c.geocode_status.is_(None),
                            households.c.geocode_status != GeocodeStatus.MATCHED.value))
    if params["only_missing"]:
        conds.append(sa.or_(households.c.geocode_status.is_(None),
                            households.c.geocode_status != GeocodeStatus.MATCHED.value))
    return conds


def _describe(params: Params) -> str:
    parts = [f"{n}={params[n]!r}" for n in (*FILTERS, "unmatched_in_job") if params.get(n) is not None]
    parts.append(f"only_missing={str(params['only_missing']).lower()}")
    return ", ".join(parts)


def select_households(conn: sa.Connection, job_id: str, params: Params, max_items: int,
                      per_job: int | None = None) -> int:
    """Insert the selection rows; returns how many. Refuses empty selections
    and, without ``limit``, those above ``max_items`` (the group limit)
    before anything is written; ``per_job`` is only named in that message."""
    conds = _conditions(conn, params)
    count = conn.scalar(sa.select(sa.func.count()).select_from(households).where(*conds)) or 0
    if count == 0:
        raise JobValidationError(
            f"No households match the selection ({_describe(params)}); nothing to geocode.",
            code="empty_selection", status=422, details={"matched": 0})
    limit = params["limit"]
    if limit is None and count > max_items:
        grouped = (f" (above {per_job:,} per job a selection runs as a group of jobs)"
                   if per_job is not None and per_job < max_items else "")
        raise JobValidationError(
            f"The selection matches {count:,} households, more than the limit of "
            f"{max_items:,} per request{grouped}. Narrow the filters, pass 'limit' "
            f"(1..{max_items:,}) to take the first ones, or ask the administrator to raise "
            "COCOA_MAX_ITEMS_PER_GROUP.",
            code="too_many_items", status=422,
            details={"matched": count, "max_items_per_group": max_items,
                     "max_items_per_job": per_job if per_job is not None else max_items})
    size = min(count, limit or max_items)
    seq = sa.func.row_number().over(order_by=households.c.id) - 1
    query = (sa.select(sa.literal(job_id, sa.String(36)), seq, households.c.id)
             .where(*conds).order_by(households.c.id).limit(size))
    conn.execute(sa.insert(geocode_selections).from_select(
        ["job_id", "seq", "household_id"], query))
    return size


def selection_size(conn: sa.Connection, job_id: str) -> int:
    """How many households ``job_id``'s own snapshot holds."""
    return int(conn.scalar(sa.select(sa.func.count()).select_from(geocode_selections)
                           .where(geocode_selections.c.job_id == job_id)) or 0)


# --------------------------------------------------------------------------- slices


def slice_of(job_id: str, params: Params) -> tuple[str, int | None, int | None]:
    """The snapshot a (non-group) job walks: its owner and first/last seq
    (inclusive; None: the whole snapshot)."""
    owner = params.get(SELECTION_OF) or job_id
    span = params.get("item_range")
    if isinstance(span, list) and len(span) == 2:
        return str(owner), int(span[0]) - 1, int(span[1]) - 1
    return str(owner), None, None


def slice_condition(owner: str, first: int | None, last: int | None) -> sa.ColumnElement[bool]:
    cond = geocode_selections.c.job_id == owner
    if first is not None:
        cond = sa.and_(cond, geocode_selections.c.seq >= first)
    if last is not None:
        cond = sa.and_(cond, geocode_selections.c.seq <= last)
    return cond


def selection_condition(conn: sa.Connection, job_id: str) -> sa.ColumnElement[bool]:
    """The ``geocode_selections`` rows a geocoding job covers: its own
    snapshot, a group child's range of its group's, or, for a group, all its
    children's (a retried group's children walk the original snapshot)."""
    row = conn.execute(sa.select(jobs.c.kind, jobs.c.params).where(jobs.c.id == job_id)).first()
    slices = [slice_of(job_id, {})]
    if row is not None and row.kind == "group":
        kids = conn.execute(sa.select(jobs.c.id, jobs.c.params).where(jobs.c.parent_id == job_id)).all()
        slices = [slice_of(kid.id, kid.params or {}) for kid in kids] or slices
    elif row is not None:
        slices = [slice_of(job_id, row.params or {})]
    return sa.or_(*(slice_condition(*piece) for piece in slices))


def selected_households(conn: sa.Connection, job_id: str) -> sa.Select[Any]:
    """The household ids a geocoding job covers (see :func:`selection_condition`)."""
    return sa.select(geocode_selections.c.household_id).where(selection_condition(conn, job_id))
