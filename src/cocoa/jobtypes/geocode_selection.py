"""Which households a ``geocode_households`` job covers: its params checked,
and the selection they choose fixed as ``geocode_selections`` rows.

Fixing the selection at creation makes the total exact, and a resumed or
retried attempt walks the same list even while imports change the
households table (see :mod:`cocoa.jobtypes.geocode_households`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cocoa.db.tables import geocode_selections, households
from cocoa.jobs.types import JobValidationError, Params
from cocoa.jobtypes.requests import GEOCODE_FILTERS, GEOCODE_HOUSEHOLDS
from cocoa.providers import GeocodeStatus, ProviderConfigError, UnknownProvider, parse_chain

FILTERS = tuple(field.name for field in GEOCODE_FILTERS)
KNOWN_PARAMS = GEOCODE_HOUSEHOLDS.names


def invalid(message: str, code: str, details: Any = None) -> JobValidationError:
    return JobValidationError(message, code=code, status=422, details=details)


def parse_params(raw: dict[str, Any], max_items: int) -> Params:
    """Check and normalise the request body. The output is a valid input
    again (the retry endpoint re-validates stored params)."""
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


def _conditions(params: Params) -> list[sa.ColumnElement[bool]]:
    conds: list[sa.ColumnElement[bool]] = [
        sa.func.upper(households.c[name]) == sa.func.upper(sa.literal(params[name]))
        for name in FILTERS if params.get(name) is not None
    ]
    if params.get("unmatched_in_job"):
        conds.append(households.c.id.in_(
            sa.select(geocode_selections.c.household_id)
            .where(geocode_selections.c.job_id == params["unmatched_in_job"])))
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


def select_households(conn: sa.Connection, job_id: str, params: Params, max_items: int) -> int:
    """Insert the selection rows; returns how many. Refuses empty and
    oversized selections before anything is written."""
    conds = _conditions(params)
    count = conn.scalar(sa.select(sa.func.count()).select_from(households).where(*conds)) or 0
    if count == 0:
        raise JobValidationError(
            f"No households match the selection ({_describe(params)}); nothing to geocode.",
            code="empty_selection", status=422, details={"matched": 0})
    limit = params["limit"]
    if limit is None and count > max_items:
        raise JobValidationError(
            f"The selection matches {count:,} households, more than the limit of "
            f"{max_items:,} per job. Narrow the filters or pass 'limit' (1..{max_items:,}).",
            code="too_many_items", status=422,
            details={"matched": count, "max_items_per_job": max_items})
    size = min(count, limit or max_items)
    seq = sa.func.row_number().over(order_by=households.c.id) - 1
    query = (sa.select(sa.literal(job_id, sa.String(36)), seq, households.c.id)
             .where(*conds).order_by(households.c.id).limit(size))
    conn.execute(sa.insert(geocode_selections).from_select(
        ["job_id", "seq", "household_id"], query))
    return size
