"""What every ``cocoa`` command shares: the consoles, one-line failures and
the local composition root (the jobs engine over the configured database).

Kept apart from the command modules so each of them can import it without
importing the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import sqlalchemy as sa
import typer
from rich.console import Console

from cocoa import auth
from cocoa.cli import datadir
from cocoa.config import Settings, get_settings
from cocoa.db.engine import make_engine
from cocoa.db.migrate import SchemaNotCurrent, check_current
from cocoa.jobs.manager import JobManager, JobNotFound
from cocoa.jobs.model import IllegalTransition
from cocoa.jobs.types import JobValidationError
from cocoa.jobtypes.builtin import register_builtin_types

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@contextmanager
def local_manager(check_schema: bool = True) -> Iterator[JobManager]:
    """The jobs engine with the shipped job types: the CLI's composition root."""
    settings = get_settings()
    missing = datadir.missing_database(settings)
    if missing:  # never create one here: only `db upgrade` and `quickstart` do
        fail(missing, 3)
    engine = make_engine(settings.resolved_database_url)
    try:
        if check_schema:
            check_current(engine, settings.resolved_database_url)
        register_builtin_types()
        yield JobManager(engine, settings)
    except SchemaNotCurrent as exc:
        fail(f"{exc} (database: {safe_url(settings)}, {datadir.origin(settings)})", 3)
    except sa.exc.OperationalError as exc:
        fail(f"Cannot reach the database ({safe_url(settings)}): {exc.orig or exc}", 2)
    except JobNotFound as exc:
        fail(str(exc), 4)
    except IllegalTransition as exc:
        fail(str(exc), 5)
    except JobValidationError as exc:
        fail(exc.message, 6)
    except auth.AuthError as exc:
        fail(str(exc), 7)
    finally:
        engine.dispose()


def safe_url(settings: Settings) -> str:
    return sa.make_url(settings.resolved_database_url).render_as_string(hide_password=True)

