"""``cocoa import voters FILE --preview`` (issue 17): what the import would do.

The same preview as ``POST /api/v1/voters/import/preview``: through the
server when the CLI talks to one, else straight from the file and the local
database (for saved mappings). Nothing is stored and no job is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from cocoa.cli.backends import Backend, BackendError, HttpBackend, LocalBackend
from cocoa.cli.common import console, fail
from cocoa.cli.connect import open_backend
from cocoa.domain.errors import InputError
from cocoa.domain.voter_files.preview import preview_file
from cocoa.jobtypes.import_voters.saved_mappings import resolve_mapping

PREVIEW_PATH = "/voters/import/preview"


def run_preview(path: Path, request: dict[str, Any], url: str | None, token: str | None) -> None:
    """``--preview``: print what importing ``path`` would do; create nothing."""
    with open_backend(url, token) as backend:
        if not path.is_file():
            fail(f"No such file: {path}", 2)
        print_preview(preview(backend, path, request))


def preview(backend: Backend, path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """The preview of ``path`` with the import ``request`` (format, mapping)."""
    if isinstance(backend, HttpBackend):
        form = {k: v for k, v in request.items() if isinstance(v, str) and k != "mode"}
        with path.open("rb") as stream:
            files = {"file": (path.name, stream, "application/octet-stream")}
            return dict(backend._call("POST", PREVIEW_PATH, data=form, files=files))
    if not isinstance(backend, LocalBackend):
        raise BackendError("This connection cannot preview an import.", 6)
    try:
        with backend.manager.engine.connect() as conn:
            mapping, _ = resolve_mapping(conn, request.get("mapping"))
        with path.open("rb") as stream:
            return preview_file(_unpacked(stream, backend), str(request.get("format") or "auto"),
                                mapping)
    except InputError as exc:
        raise BackendError(exc.message, 6) from None


def _unpacked(stream: Any, backend: LocalBackend) -> Any:
    """A zipped or gzipped file's data file, as the import reads it."""
    from cocoa.api.voter_mapping_routes import unpacked_upload

    return unpacked_upload(stream, None, backend.manager.settings)


def print_preview(shown: dict[str, Any]) -> None:
    """The preview for a terminal: summary, columns used, problems, first rows."""
    out = console.print
    out(f"[bold]{shown['layout']}[/] · {shown['rows']:,} rows ({shown['rows_note']})", highlight=False)
    out(Text(shown["reason"], style="dim"))
    out(Text(f"Voters identified by: {shown['identity']}"))
    columns = Table(title="Columns used", show_edge=False)
    columns.add_column("field")
    columns.add_column("your column")
    for field, column in shown["mapping"].items():
        columns.add_row(field, Text(column))  # file text: never markup
    out(columns)
    problems = shown["problems"]
    if problems:
        out(f"[bold]Problems in the first {shown['checked_rows']} rows:[/]")
        for problem in problems:
            style = "red" if problem["severity"] == "error" else "yellow"
            out(f"  {problem['message']}", style=style, highlight=False, markup=False)
    else:
        out(f"No problems in the first {shown['checked_rows']} rows.")
    rows = Table(title=f"The first {len(shown['sample'])} rows as they would be stored", show_edge=False)
    for head in ("row", "voter id", "name", "address", "household"):
        rows.add_column(head, overflow="fold")
    for row in shown["sample"]:
        if row["stored"]:
            address = ", ".join(str(p) for p in (row["address"], row["city"], row["state"], row["zip"]) if p)
            rows.add_row(str(row["row"]), Text(row["voter_id"]), Text(row["name"]), Text(address),
                         Text(row["household_key"] or "—"))
        else:
            rows.add_row(str(row["row"]), "not imported", Text(row["message"]), "", "")
    out(rows)
    out("Nothing was imported. Run again without --preview to start the import.")
