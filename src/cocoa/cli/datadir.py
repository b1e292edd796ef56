"""Which database a command uses, and refusing to invent one.

Only ``cocoa db upgrade`` and ``cocoa quickstart`` create a database. Every
other command that finds no SQLite file where the settings point says which
file it looked for, why there, and which command makes it - rather than
creating an empty file that the next command then calls "unmigrated".
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.datadir import config_file, data_dir_origin, record_data_dir
from cocoa.db.driver import driver_for


def database_file(settings: Settings) -> Path | None:
    """The database file the settings point at, or None (a server, in-memory)."""
    url = sa.make_url(settings.resolved_database_url)
    path = driver_for(url.get_backend_name()).database_file(url)
    return path.resolve() if path else None


def origin(settings: Settings) -> str:
    """Why the database is where it is: the setting or rule that chose it."""
    if settings.database_url:
        return "set by COCOA_DATABASE_URL"
    return f"in the data directory {settings.data_dir.resolve()}, " \
           f"{data_dir_origin('data_dir' in settings.model_fields_set)}"


def missing_database(settings: Settings) -> str | None:
    """The message for a database file that does not exist yet, else None."""
    path = database_file(settings)
    if path is None or path.exists():
        return None
    return (f"No database at {path} ({origin(settings)}). Create it with `cocoa quickstart` "
            "(database, admin user and API token) or `cocoa db upgrade` (the schema only), "
            "or point COCOA_DATA_DIR or COCOA_DATABASE_URL at an existing one.")


def remember(settings: Settings) -> Path | None:
    """After ``cocoa quickstart``: record its data directory for later commands.

    Only when the database is the data directory's SQLite file: a
    ``COCOA_DATABASE_URL`` must be given to every command anyway, and is not
    copied into a file (it may hold a password).
    """
    if settings.database_url:
        return None
    return record_data_dir(settings.data_dir)


def describe(settings: Settings, safe_url: str) -> str:
    """``cocoa db where``: the database, why it is that one, whether it exists."""
    path = database_file(settings)
    lines = [f"Database:  {safe_url}", f"Chosen:    {origin(settings)}"]
    if path is not None:
        lines.append(f"Exists:    {'yes' if path.exists() else 'no (run `cocoa quickstart`)'}")
    lines.append(f"Record:    {config_file()} (written by `cocoa quickstart`)")
    return "\n".join(lines)
