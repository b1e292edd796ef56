"""``cocoa jobs rejected``: a job's rejected rows as CSV, to fix and import again.

The same file as ``GET /api/v1/jobs/{id}/errors.csv`` (its columns end with
``original_line``, each rejected row's line as it was in the file), from the
local database or from a server. Written as it streams: a job may have
a hundred thousand rejected rows.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Annotated

import httpx
import typer

from cocoa.cli.backends import Backend, BackendError, HttpBackend, LocalBackend, http_error
from cocoa.cli.connect import TokenOption, UrlOption, open_backend
from cocoa.jobs.error_export import csv_chunks, iter_item_errors


def rejected(
    job_id: Annotated[str, typer.Argument(
        metavar="JOB_ID", help="The job's id, or a unique prefix of at least 6 characters.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the CSV to this file instead of standard output.")] = None,
    warnings: Annotated[bool, typer.Option(
        "--warnings", help="Also list warnings (rows that were imported; they have no line).")] = False,
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """A job's rejected rows as CSV (row, item, severity, code, message,
    original_line): fix the lines, put them under the file's header line and
    import that file."""
    severity = None if warnings else "error"
    with open_backend(url, token) as backend, ExitStack() as files:
        resolved = backend.resolve(job_id)
        out: IO[bytes] = files.enter_context(output.open("wb")) if output else sys.stdout.buffer
        for chunk in csv_of(backend, resolved, severity):
            out.write(chunk)
        out.flush()


def csv_of(backend: Backend, job_id: str, severity: str | None) -> Iterator[bytes]:
    """The CSV's bytes: read here from the database, or streamed from the server."""
    if isinstance(backend, LocalBackend):
        return csv_chunks(iter_item_errors(backend.manager.engine, job_id, severity=severity))
    if isinstance(backend, HttpBackend):
        return _download(backend, job_id, severity)
    raise BackendError("This backend cannot export rejected rows.")


def _download(backend: HttpBackend, job_id: str, severity: str | None) -> Iterator[bytes]:
    params = {"severity": severity} if severity else {}
    try:
        with backend.client.stream("GET", f"/jobs/{job_id}/errors.csv", params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise http_error(response, backend.url)
            yield from response.iter_bytes()
    except httpx.TransportError as exc:
        raise BackendError(f"Cannot reach the Cocoa server at {backend.url} ({exc}).", 2) from None
