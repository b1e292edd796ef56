"""A job's item errors, all of them, read in pages for an export.

``GET /jobs/{id}/errors`` pages for a screen; an export (errors.csv) needs
every error of a job that may have thousands, without holding them all:
this walks ``ix_job_errors_job`` by id (keyset, so a page costs the same
wherever it starts, and errors a running job adds meanwhile are not
skipped or repeated).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from cocoa.db.engine import reading
from cocoa.db.tables import job_errors

PAGE = 1000
SEVERITIES = ("error", "warning")
COLUMNS = ("row", "item", "severity", "code", "message", "original_line")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ROWS_PER_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ExportedError:
    """One item error as an export shows it."""

    item_index: int | None
    item_ref: str
    severity: str
    code: str
    message: str
    original: str | None  # the rejected item's text, see ItemError.original


def iter_item_errors(engine: sa.Engine, job_id: str, *, severity: str | None = None,
                     page: int = PAGE) -> Iterator[ExportedError]:
    """Every item error of ``job_id`` in the order it was recorded, one short
    read per ``page`` (no connection is held between pages, so a slow client
    downloading a large export blocks no writer)."""
    after = 0
    columns = (job_errors.c.id, job_errors.c.item_index, job_errors.c.item_ref, job_errors.c.severity,
               job_errors.c.code, job_errors.c.message, job_errors.c.original)
    while True:
        query = (sa.select(*columns).where(job_errors.c.job_id == job_id, job_errors.c.id > after)
                 .order_by(job_errors.c.id).limit(page))
        if severity is not None:
            query = query.where(job_errors.c.severity == severity)
        with reading(engine) as conn:
            rows = conn.execute(query).all()
        for row in rows:
            yield ExportedError(row.item_index, row.item_ref, row.severity, row.code, row.message,
                                row.original)
        if len(rows) < page:
            return
        after = rows[-1].id


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula
    (``= + - @``, tab, CR) gets a leading apostrophe (CSV injection; the
    lines come from files anyone may have written)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_chunks(errors: Iterator[ExportedError]) -> Iterator[bytes]:
    """errors.csv: UTF-8, a header row of :data:`COLUMNS` first, a few
    hundred rows per chunk."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for count, e in enumerate(errors, 1):
        writer.writerow([safe_cell(e.item_index), safe_cell(e.item_ref), safe_cell(e.severity),
                         safe_cell(e.code), safe_cell(e.message), safe_cell(e.original)])
        if count % _ROWS_PER_CHUNK == 0:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")
