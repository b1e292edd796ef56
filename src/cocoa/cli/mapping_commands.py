"""``cocoa import mappings``: the saved voter column mappings (issue 17).

List, save and delete the mappings ``--mapping NAME`` refers to - on the
local database, or through the server's ``/api/v1/voters/mappings`` when
the CLI talks to one (where only admins may save or delete).
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from cocoa.cli.backends import Backend, BackendError, HttpBackend, LocalBackend
from cocoa.cli.common import console, fail
from cocoa.cli.connect import TokenOption, UrlOption, open_backend
from cocoa.domain.errors import InputError
from cocoa.jobtypes.import_voters.saved_mappings import (
    delete_mapping,
    list_mappings,
    save_mapping,
)

MAPPINGS_PATH = "/voters/mappings"
mappings_app = typer.Typer(help="Saved voter column mappings (use one with --mapping NAME).",
                           no_args_is_help=True)


def _local(backend: Backend) -> LocalBackend:
    if not isinstance(backend, LocalBackend):
        raise BackendError("This connection cannot manage saved mappings.", 6)
    return backend


@mappings_app.command("list")
def list_command(url: UrlOption = None, token: TokenOption = None) -> None:
    """Show the saved mappings: name, fields and columns."""
    with open_backend(url, token) as backend:
        if isinstance(backend, HttpBackend):
            found: list[dict[str, Any]] = backend._call("GET", MAPPINGS_PATH)["mappings"]
        else:
            found = list_mappings(_local(backend).manager.engine)
    if not found:
        console.print("No saved mappings yet (save one with `cocoa import mappings save`).")
        return
    table = Table(show_edge=False)
    for head in ("name", "mapping", "updated"):
        table.add_column(head, overflow="fold")
    for item in found:
        shown = ", ".join(f"{field} ← {column}" for field, column in item["mapping"].items())
        table.add_row(Text(item["name"]), Text(shown), item.get("updated_at") or "")
    console.print(table)


@mappings_app.command("save")
def save_command(
    name: Annotated[str, typer.Argument(help="1-64 letters, digits, spaces, '_', '.' or '-'.")],
    mapping: Annotated[str, typer.Argument(
        help='Our field -> your column, as JSON: \'{"voter_id": "Voter ID", "unit": "Apt"}\'.')],
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """Save (or replace) a column mapping by name."""
    try:
        parsed = json.loads(mapping)
    except json.JSONDecodeError as exc:
        fail(f"The mapping must be JSON such as '{{\"street\": \"Street Address\"}}': {exc}", 6)
    with open_backend(url, token) as backend:
        if isinstance(backend, HttpBackend):
            saved = backend._call("POST", MAPPINGS_PATH, json={"name": name, "mapping": parsed})
        else:
            try:
                saved = save_mapping(_local(backend).manager.engine, name, parsed, "cli")
            except InputError as exc:
                raise BackendError(exc.message, 6) from None
    console.print(f"Saved mapping {saved['name']!r}.", highlight=False, markup=False)


@mappings_app.command("delete")
def delete_command(name: str, url: UrlOption = None, token: TokenOption = None) -> None:
    """Delete a saved mapping (jobs created with it are unaffected)."""
    with open_backend(url, token) as backend:
        if isinstance(backend, HttpBackend):
            backend._call("DELETE", f"{MAPPINGS_PATH}/{quote(name, safe='')}")
        else:
            try:
                delete_mapping(_local(backend).manager.engine, name)
            except InputError as exc:
                raise BackendError(exc.message, 4) from None
    console.print(f"Deleted mapping {name!r}.", highlight=False, markup=False)
