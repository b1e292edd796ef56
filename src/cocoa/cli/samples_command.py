"""``cocoa samples DIR``: write the files the docs' examples use.

Kept apart from :mod:`cocoa.cli.main` because it needs no database: a
newcomer can run it before anything else, in any folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def samples(
    directory: Annotated[Path, typer.Argument(help="Folder to write into (created if missing).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite files of the same names.")] = False,
) -> None:
    """Write a small sample town: a voter file in every layout, parcels in every format."""
    from cocoa.samples.sample_set import SamplesExist, write_samples

    console = Console()
    try:
        written = write_samples(directory, force=force)
    except SamplesExist as exc:
        Console(stderr=True).print(
            f"[bold red]error:[/] {len(exc.existing)} of the sample files already exist in "
            f"{directory} ({', '.join(p.name for p in exc.existing)}); nothing was written. "
            "Pick an empty folder, or pass --force to overwrite them.", highlight=False)
        raise typer.Exit(7) from None
    except OSError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] cannot write into {directory}: {exc}",
                                   highlight=False)
        raise typer.Exit(7) from None
    for path in written:
        console.print(f"  {path}", highlight=False, soft_wrap=True)
    console.print(f"Wrote {len(written)} files; {directory / 'README.txt'} says what is in them.",
                  highlight=False, soft_wrap=True)
