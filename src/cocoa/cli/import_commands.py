"""Commands that start jobs: ``cocoa import voters|parcels`` and ``cocoa geocode``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cocoa.cli.common import console, fail
from cocoa.cli.connect import TokenOption, UrlOption, open_backend
from cocoa.cli.jobs_commands import watch
from cocoa.cli.mapping_commands import mappings_app
from cocoa.cli.voter_preview import run_preview
from cocoa.jobs.model import Status
from cocoa.jobtypes.requests import IMPORT_VOTERS, PROVIDER, RequestField

import_app = typer.Typer(help="Start import jobs.", no_args_is_help=True)
VOTER_FORMAT, VOTER_MODE = IMPORT_VOTERS.field("format"), IMPORT_VOTERS.field("mode")
import_app.add_typer(mappings_app, name="mappings")


def _choices(field: RequestField, described: bool = True) -> str:
    """Option help listing a field's choices, from the job type's request schema."""
    if not described:
        return f"One of {', '.join(field.values)}."
    return "; ".join(f"{c.value}: {c.description}" if c.description else c.value for c in field.choices) + "."


def create_and_maybe_watch(type_name: str, request: dict[str, Any], path: Path | None, watch_it: bool,
                           url: str | None = None, token: str | None = None) -> None:
    """Create the job on the local database or the server, and follow it if asked."""
    with open_backend(url, token) as backend:
        if path is not None and not path.is_file():
            fail(f"No such file: {path}", 2)
        job = backend.create(type_name, request, path)
        console.print(f"Created job {job['id']} ({type_name}){_group_note(job)}.", highlight=False)
        if watch_it:
            job = watch(backend, job["id"])
            sys.exit(0 if job["status"] == Status.COMPLETED.value else 1)


def _group_note(job: dict[str, Any]) -> str:
    """Over the per-job limit the job is a group: say so, and how it is cut."""
    if job.get("kind") != "group":
        return ""
    kids = job.get("children") or []  # a local create lists none
    return f", a group of {f'{len(kids)} ' if kids else ''}jobs over {job['progress']['total'] or 0:,} items"


@import_app.command("voters")
def import_voters(
    file: Path,
    format: Annotated[str, typer.Option("--format", help=_choices(VOTER_FORMAT, described=False))] = "auto",
    mode: Annotated[str, typer.Option(help=_choices(VOTER_MODE))] = VOTER_MODE.default,
    mapping: Annotated[str | None, typer.Option(
        help='Which of your columns holds each field: JSON such as \'{"voter_id": "Voter ID", '
        '"unit": "Apt"}\', or the name of a saved mapping.')] = None,
    preview: Annotated[bool, typer.Option(
        "--preview", help="Show what the import would do (layout, columns used, first rows, "
        "problems) and import nothing.")] = False,
    member: Annotated[str | None, typer.Option(
        help="For a .zip holding several files: the voter file inside it to import.")] = None,
    watch_it: Annotated[bool, typer.Option("--watch", help="Follow progress until done.")] = False,
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """Import a voter file (plain, or a .zip / .gz holding one)."""
    request: dict[str, Any] = {"format": format, "mode": mode}
    if member:
        request["member"] = member
    if mapping:
        request["mapping"] = mapping  # JSON or a saved name: the job type reads it (issue 17)
    if preview:
        run_preview(file, request, url, token)
        return
    create_and_maybe_watch("import_voters", request, file, watch_it, url, token)


@import_app.command("parcels")
def import_parcels(
    file: Path,
    source_crs: Annotated[str | None, typer.Option(help="CRS when the file has none, e.g. EPSG:2264.")] = None,
    source: Annotated[str | None, typer.Option(help="Dataset name parcels are keyed under.")] = None,
    mapping: Annotated[str | None, typer.Option(
        help='Field mapping as JSON, e.g. \'{"apn_field": "PIN", "address_field": "SITE_ADDR"}\'.')] = None,
    layer: Annotated[str | None, typer.Option(help="Layer to read from a multi-layer file.")] = None,
    watch_it: Annotated[bool, typer.Option("--watch", help="Follow progress until done.")] = False,
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """Import parcels and link households to them."""
    request: dict[str, Any] = {}
    for key, value in (("source_crs", source_crs), ("source", source), ("layer", layer)):
        if value:
            request[key] = value
    if mapping:
        try:
            request["mapping"] = json.loads(mapping)
        except ValueError as exc:
            fail(f"--mapping must be JSON: {exc}", 6)
    create_and_maybe_watch("parcel_import", request, file, watch_it, url, token)


def geocode(
    city: Annotated[str | None, typer.Option()] = None,
    state: Annotated[str | None, typer.Option()] = None,
    zip_code: Annotated[str | None, typer.Option("--zip-code")] = None,
    county: Annotated[str | None, typer.Option()] = None,
    precinct: Annotated[str | None, typer.Option()] = None,
    provider: Annotated[str, typer.Option(help=PROVIDER.description)] = PROVIDER.default,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    all_households: Annotated[bool, typer.Option("--all", help="Also re-geocode matched households.")] = False,
    watch_it: Annotated[bool, typer.Option("--watch", help="Follow progress until done.")] = False,
    url: UrlOption = None, token: TokenOption = None,
) -> None:
    """Geocode households."""
    request: dict[str, Any] = {"provider": provider, "only_missing": not all_households}
    for key, value in (("city", city), ("state", state), ("zip_code", zip_code), ("county", county),
                       ("precinct", precinct), ("limit", limit)):
        if value is not None:
            request[key] = value
    create_and_maybe_watch("geocode_households", request, None, watch_it, url, token)

