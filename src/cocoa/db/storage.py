"""Storage trouble told apart from bugs, and files only their owner can read.

A locked, full, read-only or unreachable database is not a bug in a request
handler or a job: the client should hear ``503`` with ``Retry-After`` and a
sentence that names the problem, and a job whose run it stopped should say so
on the job. :func:`storage_problem` recognises these errors by the driver's
own codes (SQLite's result codes, PostgreSQL's SQLSTATE), so every other
database error stays what it is - a bug, answered with ``500``.

The data folder and the SQLite file hold voter data and password hashes, so
what we create there is private to the account that runs the service
(:func:`private_dir`, :func:`private_sqlite_file`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from cocoa.db.driver import driver_for

# SQLite primary result codes (https://sqlite.org/rescode.html).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 5, 6, 8, 10, 13, 14


@dataclass(frozen=True, slots=True)
class StorageProblem:
    """What is wrong with the storage, for a 503 or a job's error."""

    code: str  # e.g. "database_busy": the API error code
    what: str  # what is wrong, e.g. "The database disk is full (database or disk is full)"
    fix: str  # what an operator does about it ("" when waiting is all it takes)
    cause: str  # the driver's own words, e.g. "database is locked"
    retry_after: int  # seconds worth waiting before trying again

    @property
    def message(self) -> str:
        """For a client: what is wrong, what to do, when to come back."""
        fix = f"{self.fix}; " if self.fix else ""
        return f"{self.what} — {fix}try again in {self.retry_after} s."

    @property
    def job_message(self) -> str:
        """For a job's error: no "try again" (the engine retries by itself)."""
        return f"{self.what} — {self.fix}." if self.fix else f"{self.what}."

    def details(self) -> dict[str, object]:
        return {"cause": self.cause, "retry_after_seconds": self.retry_after}


def storage_problem(exc: BaseException, where: str | None = None) -> StorageProblem | None:
    """The storage problem behind ``exc``, or None if it is not one (a bug).

    ``where`` names the place an operator should look, e.g. "the disk holding
    /srv/cocoa/var" (see :func:`storage_location`).
    """
    if isinstance(exc, sa.exc.TimeoutError):  # the connection pool, not the database
        return StorageProblem("database_busy", "Every database connection of this server is in use", "",
                              str(exc).split(",")[0], 5)
    driver = _driver_error(exc)
    if isinstance(driver, sqlite3.Error):
        return _sqlite_problem(driver, where or "the disk holding the SQLite database")
    if driver is not None:
        return _postgres_problem(driver, where or "the PostgreSQL server")
    return None


def storage_location(engine: sa.Engine) -> str:
    """Where an operator looks: the SQLite file's folder, or the server."""
    return driver_for(engine).storage_location(engine.url)


def _driver_error(exc: BaseException) -> BaseException | None:
    """The DB-API exception inside SQLAlchemy's wrapper (or raised raw by a
    job type that used the driver connection directly)."""
    current: BaseException | None = exc
    for _ in range(8):  # a short cause chain; never loop on a cycle
        if current is None:
            return None
        if isinstance(current, sqlite3.Error) or _is_psycopg_error(current):
            return current
        if isinstance(current, sa.exc.DBAPIError) and current.orig is not None:
            current = current.orig
        else:
            current = current.__cause__
    return None


def _is_psycopg_error(exc: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.Error)


def _sqlite_problem(exc: sqlite3.Error, where: str) -> StorageProblem | None:
    cause = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else _sqlite_code_from_text(cause)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StorageProblem("database_busy", "The database is busy (locked by another process or a long write)",
                              "", cause, 5)
    if primary == _SQLITE_FULL:
        return StorageProblem("database_full", f"The database disk is full ({cause})", f"free space on {where}",
                              cause, 60)
    if primary == _SQLITE_IOERR:
        return StorageProblem("database_io_error", f"The database could not read or write its file ({cause})",
                              f"check free space and the health of the disk on {where}", cause, 30)
    if primary == _SQLITE_READONLY:
        return StorageProblem("database_read_only", f"The database is read-only ({cause})",
                              f"the server must be allowed to write the database file and its folder on {where}",
                              cause, 60)
    if primary == _SQLITE_CANTOPEN:
        return StorageProblem("database_unreachable", f"The database file cannot be opened ({cause})",
                              f"check that it and its folder exist on {where} and the server may write them",
                              cause, 30)
    return None


def _sqlite_code_from_text(message: str) -> int | None:
    """Older drivers carry no result code: recognise SQLite's fixed texts."""
    texts = {"database is locked": _SQLITE_BUSY, "database table is locked": _SQLITE_LOCKED,
             "database or disk is full": _SQLITE_FULL, "disk I/O error": _SQLITE_IOERR,
             "readonly database": _SQLITE_READONLY, "unable to open database file": _SQLITE_CANTOPEN}
    return next((code for text, code in texts.items() if text in message), None)


def _postgres_problem(exc: BaseException, where: str) -> StorageProblem | None:
    """By SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html)."""
    sqlstate: str | None = getattr(exc, "sqlstate", None)
    cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if sqlstate in ("55P03", "57014", "40P01", "40001"):  # lock/statement timeout, deadlock, serialization
        return StorageProblem("database_busy", "The database is busy (a lock held by another session, or a "
                              "conflicting transaction)", "", cause, 5)
    if sqlstate == "53100":
        return StorageProblem("database_full", f"The database server's disk is full ({cause})",
                              f"free space on the data volume of {where}", cause, 60)
    if sqlstate in ("53000", "53200", "53300", "53400"):
        return StorageProblem("database_overloaded", f"The database server is out of a resource ({cause})",
                              f"if it persists, check {where} (max_connections, memory)", cause, 5)
    if sqlstate in ("58030", "58000", "XX001", "XX002"):
        return StorageProblem("database_io_error", f"The database server could not read or write its files "
                              f"({cause})", f"check the disk of {where}", cause, 30)
    if sqlstate in ("25006", "57P03"):  # read-only (standby or setting), still starting up
        return StorageProblem("database_read_only", f"The database does not accept writes now ({cause})",
                              f"check whether {where} is a standby, set read-only, or still starting up", cause, 30)
    connection_lost = (sqlstate or "").startswith("08") or sqlstate in ("57P01", "57P02")
    if connection_lost or (sqlstate is None and _is_operational(exc)):
        return StorageProblem("database_unreachable", f"The database cannot be reached ({cause})",
                              f"check that {where} is running and reachable", cause, 10)
    return None


def _is_operational(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


# ---------------------------------------------------------------------- free space


def free_megabytes(path: Path) -> int:
    """Free space (MiB) for an unprivileged writer on the volume holding ``path``."""
    return shutil.disk_usage(_existing(path)).free // (1024 * 1024)


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# ---------------------------------------------------------------------- private files


def private_dir(path: Path) -> None:
    """Create ``path`` (and any missing parents) readable by the owner only.

    Folders that already exist are left as they are: an operator who made
    the data dir chose its mode, and loosening or tightening it behind their
    back could break their set-up (a group-readable backup folder, say).
    """
    missing: list[Path] = []
    current = path.absolute()
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # another process made it meanwhile: theirs
            continue
        folder.chmod(0o700)  # mkdir's mode is filtered by the umask; ours is exact


def private_sqlite_file(path: Path) -> None:
    """Create an empty SQLite database file with mode 0600 if there is none.

    SQLite gives its ``-wal`` and ``-shm`` files the mode of the database
    file, so they are private too. An empty file is a valid empty database.
    An existing file is left as it is (see :func:`private_dir`).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)  # exact, whatever the umask
    finally:
        os.close(fd)
