"""Text for people, shared by the ``cocoa`` command and the web pages, so a
job reads the same in a terminal and in a browser.

Each surface keeps its own widths and its own mark for "nothing" (the CLI
prints nothing, the pages a dash); the rules live here once.
"""

from __future__ import annotations

from datetime import datetime


def cell_text(message: str | None, width: int) -> str:
    """A message folded to one line and cut to ``width`` characters with an
    ellipsis, for a table cell (the job's own page or ``cocoa jobs show``
    has it whole)."""
    if not message:
        return ""
    line = " ".join(message.split())
    return line if len(line) <= width else line[:width - 1].rstrip() + "…"


def timestamp_text(value: str | None, empty: str = "") -> str:
    """An ISO 8601 timestamp as ``2026-12-05 16:10:45 UTC``: unambiguous for a
    team spread over time zones, and what the pages' script renders too.
    Text that is not a timestamp is shown as given; ``UTC`` is added only
    when the value carries its offset."""
    if not value:
        return empty
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.utcoffset() is not None else "")
