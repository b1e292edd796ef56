"""``cocoa jobs show``: the public job object as a person reads it.

Pure functions of the job object (docs/api.md's ``JobOut``) and, when the
server or database keeps it, the job's history - so the same summary is
printed whether the CLI reads the database or the HTTP API.
"""

from __future__ import annotations

from typing import Any

from cocoa.display import timestamp_text

RESULT_SKIPPED = ("rows",)  # internal counters not worth a line


def summary_lines(job: dict[str, Any], history: list[dict[str, Any]] | None = None) -> list[str]:
    """The lines of the summary, in reading order: what, how far, when, from what, outcome."""
    lines = [f"Job       {job['id']}", f"Type      {job['type']}", f"Status    {_status(job)}",
             f"Progress  {progress_text(job['progress'])}"]
    lines += _timings(job)
    source = file_name(job)
    if source:
        lines.append(f"File      {source}")
    if job.get("created_by"):
        lines.append(f"By        {job['created_by']}")
    if job.get("retry_of"):
        lines.append(f"Retry of  {job['retry_of']} (attempt {job.get('attempt', '?')})")
    if job.get("error"):
        lines.append(f"Error     {job['error']}")
    lines += _result(job.get("result") or {})
    lines += _errors(job)
    if history:
        lines.append("History")
        lines += [f"  {history_line(event)}" for event in history]
    return lines


def _status(job: dict[str, Any]) -> str:
    status = str(job["status"])
    if job.get("requested_action"):
        status += f" ({job['requested_action']} requested; takes effect after the current batch)"
    if job.get("archived_at"):
        status += f", archived {short_time(job['archived_at'])}"
    return status


def progress_text(progress: dict[str, Any]) -> str:
    """``1,200/5,000 (24.0%) · 1,190 ok, 10 failed · 300/s, ETA 13s · linking``."""
    total = progress.get("total")
    done = f"{progress['processed']:,}/{total:,}" if total is not None else f"{progress['processed']:,}/?"
    parts = [f"{done} ({progress['percent']:.1f}%)",
             f"{progress.get('succeeded', 0):,} ok, {progress.get('failed', 0):,} failed"]
    if progress.get("rate_per_second"):
        eta = progress.get("eta_seconds")
        parts.append(f"{progress['rate_per_second']:,.0f}/s" + (f", ETA {eta:.0f}s" if eta is not None else ""))
    if progress.get("phase"):
        parts.append(str(progress["phase"]))
    return " · ".join(parts)


def _timings(job: dict[str, Any]) -> list[str]:
    lines = [f"Created   {short_time(job['created_at'])}"]
    if job.get("started_at"):
        lines.append(f"Started   {short_time(job['started_at'])}")
    if job.get("completed_at"):
        lines.append(f"Finished  {short_time(job['completed_at'])}")
    elapsed = job.get("elapsed_seconds", job.get("duration_seconds"))
    if elapsed is not None:
        busy = job.get("processing_seconds")
        lines.append(f"Elapsed   {duration_text(float(elapsed))}"
                     + (f" ({duration_text(float(busy))} processing)" if busy is not None else ""))
    return lines


def file_name(job: dict[str, Any]) -> str | None:
    """The uploaded file (``input`` of the job object): name, size, layout."""
    source = job.get("input")
    if not isinstance(source, dict) or not source.get("filename"):
        return None
    extras = []
    if isinstance(source.get("bytes"), int):
        extras.append(f"{source['bytes']:,} bytes")
    if source.get("layout"):
        extras.append(f"layout {source['layout']}")
    return str(source["filename"]) + (f" ({', '.join(extras)})" if extras else "")


def _result(result: dict[str, Any]) -> list[str]:
    counts = [(k, v) for k, v in result.items()
              if k not in RESULT_SKIPPED and isinstance(v, int | float) and not isinstance(v, bool)]
    if not counts:
        return []
    return ["Result    " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts)]


def _errors(job: dict[str, Any]) -> list[str]:
    count = int(job.get("error_count") or 0)
    if not count:
        return []
    recent = job.get("recent_errors") or []
    lines = [f"Errors    {count:,} item error{'' if count == 1 else 's'}"
             + (f" (the last {len(recent)}; all: `cocoa jobs errors {job['id'][:8]}`)" if recent else "")]
    lines += [f"  {e['item']}: {e['severity']} {e['code']}: {e['message']}" for e in recent]
    return lines


def history_line(event: dict[str, Any]) -> str:
    when = short_time(str(event.get("at") or event.get("created_at") or event.get("time") or ""))
    what = str(event.get("event") or event.get("action") or event.get("kind") or "?")
    actor = event.get("actor") or event.get("by")
    detail = event.get("detail") or event.get("message") or event.get("details")
    text = f"{when}  {what}" + (f" by {actor}" if actor else "")
    if detail:
        text += f" ({detail})" if isinstance(detail, str) else f" {detail}"
    return text


def short_time(value: str | None) -> str:
    """An ISO timestamp as ``2026-12-05 16:10:45 UTC`` (unparseable text as given)."""
    return timestamp_text(value)


def duration_text(seconds: float) -> str:
    """``4.2s``, ``3m 07s``, ``2h 05m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
