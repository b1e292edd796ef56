"""Where the data lives, decided the same way from any directory.

The database used to be ``./var/cocoa.db`` relative to wherever a command
ran, so ``cocoa import`` from another folder quietly made a second, empty
database. Now the data directory is resolved once, in this order:

1. the ``COCOA_DATA_DIR`` setting (and ``COCOA_DATABASE_URL``, which names
   the database outright);
2. the data directory the last ``cocoa quickstart`` used, recorded in a
   per-user file (:func:`config_file`) that every command reads;
3. the per-user default, ``$XDG_DATA_HOME/cocoa`` (``~/.local/share/cocoa``).

The recorded file is a one-line TOML document (``data_dir = "..."``), so an
operator can read and edit it by hand.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path

from cocoa.db.storage import private_dir

APP = "cocoa"


def _xdg(variable: str, fallback: str) -> Path:
    """An XDG base directory; the spec says to ignore relative values."""
    value = os.environ.get(variable, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def config_file() -> Path:
    """The per-user file in which ``cocoa quickstart`` records its data directory."""
    return _xdg("XDG_CONFIG_HOME", ".config") / APP / "config"


def default_data_dir() -> Path:
    """The per-user data directory used when nothing else names one."""
    return _xdg("XDG_DATA_HOME", ".local/share") / APP


def recorded_data_dir() -> Path | None:
    """The data directory recorded by ``cocoa quickstart``, if any.

    An unreadable or malformed file counts as no record: the fallback is the
    per-user default, and the error message of a command that then finds no
    database names both places.
    """
    try:
        data = tomllib.loads(config_file().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    value = data.get("data_dir")
    return Path(value) if isinstance(value, str) and value else None


def resolve_data_dir() -> Path:
    """The data directory when the ``COCOA_DATA_DIR`` setting is not given."""
    return recorded_data_dir() or default_data_dir()


def record_data_dir(data_dir: Path) -> Path:
    """Remember ``data_dir`` (absolute) for every later command; returns the file.

    Written to a temporary file and renamed, so a reader never sees half a
    record; the folder is the user's alone like the data folder.
    """
    path = config_file()
    private_dir(path.parent)
    text = f"# Written by `cocoa quickstart`: the data directory every cocoa command uses\n" \
           f"# unless COCOA_DATA_DIR or COCOA_DATABASE_URL says otherwise.\n" \
           f"data_dir = {json.dumps(str(data_dir.resolve()), ensure_ascii=False)}\n"
    replace_privately(path, text)
    return path


def replace_privately(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` all at once: a reader sees the old file or
    the new one, never half of it, and the new file is the owner's alone
    (mode 0600 from its creation, not chmod-ed afterwards: never readable by
    others, not even briefly)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def data_dir_origin(given: bool) -> str:
    """Why the data directory is the one it is, for messages.

    ``given``: the ``COCOA_DATA_DIR`` setting named it.
    """
    if given:
        return "set by COCOA_DATA_DIR"
    if recorded_data_dir() is not None:
        return f"recorded by `cocoa quickstart` in {config_file()}"
    return "the per-user default; no `cocoa quickstart` has recorded another"
