"""How job data is shown: timestamps, durations, rates and the control buttons.

These rules are mirrored in ``static/app.js`` (which re-renders the same
fields from live updates), so the first paint and every later update look the
same. Keep the two in step.
"""

from __future__ import annotations

import json
from typing import Any

from cocoa.display import cell_text, timestamp_text

STATUSES = ("pending", "processing", "paused", "completed", "failed", "cancelled")
ACTIVE = frozenset({"pending", "processing", "paused"})
ACTION_LABELS = {"cancel": "Cancel", "pause": "Pause", "resume": "Resume", "retry": "Retry"}


def allowed_actions(job: dict[str, Any]) -> list[str]:
    """The control buttons the job's state allows (the engine's rules, see
    ``cocoa.jobs.model.apply_control``), in display order."""
    status = job.get("status")
    requested = job.get("requested_action")
    actions: list[str] = []
    if status == "pending" or (status == "processing" and requested is None):
        actions.append("pause")
    if status == "paused" or (status == "processing" and requested == "pause"):
        actions.append("resume")
    if status in ("pending", "processing", "paused") and requested != "cancel":
        actions.append("cancel")
    if status in ("failed", "cancelled"):
        actions.append("retry")
    return actions


def fmt_time(value: str | None) -> str:
    """ISO 8601 UTC -> ``2026-11-28 17:00:22 UTC``: unambiguous for a team
    spread over time zones, and identical to what app.js renders."""
    return timestamp_text(value, "—")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def fmt_rate(rate: float | None) -> str:
    return f"{rate:,.1f}/s" if rate else "—"


def fmt_number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def fmt_value(value: Any) -> str:
    """Result/param values as text; nested data as compact JSON (escaped by Jinja)."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return fmt_number(value)


def fmt_count(processed: int | None, total: int | None) -> str:
    done = fmt_number(processed or 0)
    return f"{done} / {fmt_number(total)}" if total is not None else f"{done} / ?"


def fmt_input(data: dict[str, Any] | None) -> str:
    """The job's file in one line after its name: ``12,345 bytes · zip ·
    oh_swvf`` (``input`` of the job object), so two imports of two counties
    look different in a list."""
    if not data:
        return "—"
    parts = [f"{fmt_number(data.get('bytes'))} bytes"]
    if data.get("compressed"):
        parts.append(str(data["compressed"]))
    if data.get("layout"):
        parts.append(str(data["layout"]))
    return " · ".join(parts)


SHORT_ERROR = 80


def short_error(message: str | None) -> str:
    """A failure message cut for a table cell (the job page has it whole)."""
    return cell_text(message, SHORT_ERROR)


def type_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


RANGE_NOUNS = {"import_voters": "rows", "parcel_import": "features", "geocode_households": "households"}
"""What a group child's item range counts, by job type (app.js keeps the same map)."""


def range_noun(type_name: str) -> str:
    return RANGE_NOUNS.get(type_name, "items")


def page_count(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))
