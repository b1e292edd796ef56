"""Where ``cocoa login`` keeps the server URL and API token.

One JSON file per user, ``$XDG_CONFIG_HOME/cocoa/credentials`` (by default
``~/.config/cocoa/credentials``), next to the data-directory record. It holds
a bearer token, so it is created with mode 0600 in one step (``os.open``
with the mode, never "write, then chmod"), in a folder only the user may
enter, and a file that others can read is refused rather than used: a token
that leaked there should be revoked, not silently trusted.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cocoa.datadir import config_file, replace_privately
from cocoa.db.storage import private_dir


class CredentialsError(Exception):
    """The credentials file exists but cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    username: str | None = None


def credentials_file() -> Path:
    """The per-user file written by ``cocoa login`` (beside :func:`cocoa.datadir.config_file`)."""
    return config_file().with_name("credentials")


def save(credentials: Credentials) -> Path:
    """Write the file, mode 0600 from its first byte, replacing any earlier one atomically."""
    path = credentials_file()
    private_dir(path.parent)
    body = json.dumps({"url": credentials.url, "token": credentials.token,
                       "username": credentials.username}, indent=2) + "\n"
    replace_privately(path, body)  # 0600 from creation: never readable by others, not even briefly
    return path


def load() -> Credentials | None:
    """The stored credentials, None when there is no file; :class:`CredentialsError`
    for a file others may read or one that is not what ``cocoa login`` writes."""
    path = credentials_file()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"Cannot read {path}: {exc.strerror}.") from None
    with os.fdopen(fd, "r", encoding="utf-8") as stream:
        mode = os.fstat(stream.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsError(
                f"{path} is readable by other users (mode {stat.filemode(mode)}), so the token in it "
                f"may have leaked: revoke it, then `chmod 600 {path}` or run `cocoa login` again.")
        try:
            data = json.loads(stream.read())
        except (ValueError, UnicodeDecodeError):
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str) \
            or not isinstance(data.get("token"), str):
        raise CredentialsError(f"{path} is not a credentials file written by `cocoa login`; "
                               "run `cocoa login URL` again.")
    username = data.get("username")
    return Credentials(data["url"], data["token"], username if isinstance(username, str) else None)
