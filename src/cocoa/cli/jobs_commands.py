"""``cocoa jobs``: inspect and control jobs, in the local database or on a
server (``--url``/``--token``, or ``cocoa login``; see :mod:`cocoa.cli.connect`).

Every command that takes a job id also takes a unique prefix of 6+ characters.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cocoa.cli.backends import Backend
from cocoa.cli.common import console
from cocoa.cli.connect import TokenOption, UrlOption, open_backend
from cocoa.cli.rejected_rows import rejected
from cocoa.cli.summary import history_line, short_time, summary_lines
from cocoa.display import cell_text
from cocoa.jobs.model import Status

jobs_app = typer.Typer(help="Inspect and control jobs.", no_args_is_help=True)

JobIdArgument = Annotated[str, typer.Argument(
    metavar="JOB_ID", help="The job's id, or a unique prefix of at least 6 characters.")]
ERRORS_PAGE = 1000


def short_id(job_id: str) -> str:
    """What the listing shows: enough to type back (any 6+ character prefix works)."""
    return job_id[:8] + "…"


def _job_row(job: dict[str, Any]) -> list[str]:
    p = job["progress"]
    total = "?" if p["total"] is None else str(p["total"])
    return [short_id(job["id"]), job["type"], job["status"], f"{p['percent']:.1f}% ({p['processed']}/{total})",
            str(job["error_count"]), short_time(job["created_at"]).removesuffix(" UTC"),
            job.get("created_by") or "", _file_cell(job.get("input")), _failure_cell(job.get("error"))]


def _file_cell(source: dict[str, Any] | None) -> str:
    """``name (12,345 B, zip, layout)``: what tells two imports apart."""
    if not isinstance(source, dict):
        return ""
    facts = [f"{source['bytes']:,} B" if isinstance(source.get("bytes"), int) else None,
             source.get("compressed") or None, source.get("layout") or None]
    extras = ", ".join(str(fact) for fact in facts if fact)
    return f"{source.get('filename') or '(no name)'}" + (f" ({extras})" if extras else "")


FAILURE_CHARS = 60


def _failure_cell(error: str | None) -> str:
    """A failed job's message, cut short (``cocoa jobs show`` has it whole)."""
    return cell_text(error, FAILURE_CHARS)


@jobs_app.command("list")
def jobs_list(
    status: Annotated[Status | None, typer.Option(help="Filter by status.")] = None,
    type_name: Annotated[str | None, typer.Option("--type", help="Filter by job type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    all_: Annotated[bool, typer.Option("--all", help="Include archived (and, locally, internal) jobs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """List recent jobs, newest first."""
    with open_backend(url, token) as backend:
        found, total = backend.list_jobs(status=status.value if status else None, type_name=type_name,
                                         limit=limit, include_all=all_)
    if as_json:
        print(json.dumps({"jobs": found, "total": total}, indent=2))
        return
    table = Table("id", "type", "status", "progress", "errors", "created (UTC)", "by", "file", "failure",
                  title=f"{len(found)} of {total} jobs")
    for job in found:
        table.add_row(*_job_row(job))
    console.print(table)


@jobs_app.command("show")
def jobs_show(
    job_id: JobIdArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job object as JSON.")] = False,
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """Show one job: status, progress, timings, file, results, recent errors, history."""
    with open_backend(url, token) as backend:
        job = backend.job(backend.resolve(job_id))
        if as_json:
            print(json.dumps(job, indent=2))
            return
        history = backend.history(job["id"])
    for line in summary_lines(job, history):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


@jobs_app.command("errors")
def jobs_errors(
    job_id: JobIdArgument,
    as_csv: Annotated[bool, typer.Option("--csv", help="Every error as CSV on standard output.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many (default: all).")] = None,
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """List a job's item errors in the order they were recorded."""
    with open_backend(url, token) as backend:
        resolved = backend.resolve(job_id)
        if as_csv:
            out = csv.writer(sys.stdout, lineterminator="\n")
            out.writerow(["item", "item_index", "severity", "code", "message"])
            for error in _all_errors(backend, resolved, limit):
                out.writerow([error["item"], "" if error["item_index"] is None else error["item_index"],
                              error["severity"], error["code"], error["message"]])
            return
        errors = list(_all_errors(backend, resolved, limit))
    table = Table("item", "severity", "code", "message", title=f"{len(errors)} item errors of {resolved}")
    for error in errors:
        table.add_row(error["item"], error["severity"], error["code"], error["message"])
    console.print(table)


def _all_errors(backend: Backend, job_id: str, limit: int | None) -> Iterator[dict[str, Any]]:
    """Page through the errors (1,000 at a time) up to ``limit``."""
    offset = 0
    while limit is None or offset < limit:
        size = ERRORS_PAGE if limit is None else min(ERRORS_PAGE, limit - offset)
        page, total = backend.errors(job_id, limit=size, offset=offset)
        yield from page
        offset += len(page)
        if not page or offset >= total:
            return


def _control(action: str) -> Callable[..., None]:
    def command(job_id: JobIdArgument, url: UrlOption = None, token: TokenOption = None) -> None:
        with open_backend(url, token) as backend:
            job = backend.control(backend.resolve(job_id), action)
        pending = job.get("requested_action")
        note = f" ({pending} requested; takes effect after the current batch)" if pending else ""
        console.print(f"Job {job['id']} is {job['status']}{note}.", highlight=False)

    command.__doc__ = f"{action.capitalize()} a job."
    return command


for _action in ("cancel", "pause", "resume"):
    jobs_app.command(_action)(_control(_action))


jobs_app.command("rejected")(rejected)  # cocoa.cli.rejected_rows: errors.csv with the original lines


@jobs_app.command("retry")
def jobs_retry(job_id: JobIdArgument, url: UrlOption = None, token: TokenOption = None) -> None:
    """Start a new job with the same input as a failed or cancelled one."""
    with open_backend(url, token) as backend:
        resolved = backend.resolve(job_id)
        job = backend.retry(resolved)
    console.print(f"Created job {job['id']} (retry of {resolved}).", highlight=False)


@jobs_app.command("watch")
def jobs_watch(
    job_id: JobIdArgument,
    interval: Annotated[float, typer.Option(help="Seconds between polls of the local database.")] = 0.5,
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """Live progress bar with rate and ETA until the job ends, then its result
    (over a server's event stream with --url or after `cocoa login`)."""
    with open_backend(url, token) as backend:
        job = watch(backend, backend.resolve(job_id), interval)
    sys.exit(0 if job["status"] == Status.COMPLETED.value else 1)


def watch(backend: Backend, job_id: str, interval: float = 0.5) -> dict[str, Any]:
    """Show the job's snapshots as a progress bar until it ends; returns the last."""
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.completed:,.0f}/{task.fields[total_text]}"),
               TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"), TimeElapsedColumn())
    job: dict[str, Any] = {}
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("", total=None, total_text="?", rate="", eta="")
        for job in backend.follow(job_id, interval):
            p = job["progress"]
            bar.update(task, completed=p["processed"], total=p["total"],
                       description=f"{job['type']}{_group_part(job)} "
                                   f"[{job['status']}{' · ' + p['phase'] if p['phase'] else ''}]",
                       total_text=f"{p['total']:,}" if p["total"] is not None else "?",
                       rate=f"{p['rate_per_second']:,.0f}/s" if p["rate_per_second"] else "",
                       eta=f"ETA {p['eta_seconds']:.0f}s" if p["eta_seconds"] is not None else "")
    _print_outcome(job)
    return job


def _group_part(job: dict[str, Any]) -> str:
    """For a job group: which of its jobs runs ("group, part 2/4")."""
    children = job.get("children") or []
    if job.get("kind") != "group" or not children:
        return ""
    done = sum(child["status"] == "completed" for child in children)
    running = next((i for i, child in enumerate(children, 1) if child["status"] == "processing"), None)
    return f" group, part {running or done}/{len(children)}"


def _print_outcome(job: dict[str, Any]) -> None:
    style = {"completed": "green", "failed": "red"}.get(job["status"], "yellow")
    console.print(f"[{style}]Job {job['id']} {job['status']}[/]", highlight=False)
    if job.get("error"):
        console.print(f"error: {job['error']}", highlight=False, markup=False)
    summary: dict[str, Any] = {"result": job["result"], "error_count": job["error_count"]}
    if job.get("kind") == "group":
        summary["children"] = [{"id": c["id"], "status": c["status"], "item_range": c["item_range"]}
                               for c in job.get("children") or []]
    console.print_json(json.dumps(summary))


@jobs_app.command("history")
def jobs_history(
    job_id: JobIdArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON.")] = False,
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """Who did what to a job and when: created, claimed, paused, cancelled, rescued, ..."""
    with open_backend(url, token) as backend:
        resolved = backend.resolve(job_id)
        events = backend.history(resolved)
    if events is None:
        console.print("This server does not keep job history.", highlight=False)
        raise typer.Exit(1)
    if as_json:
        print(json.dumps({"job_id": resolved, "events": events}, indent=2))
        return
    for event in events:
        console.print(history_line(event), highlight=False, markup=False, soft_wrap=True)
