"""Connecting to the database: one function per backend quirk.

SQLite gets WAL (readers never block the writer), a busy timeout (writers
queue instead of failing) and foreign keys; PostgreSQL goes through psycopg 3.

How long a statement waits for a lock (``lock_wait_ms``) is the caller's
choice: a request handler should give up after a few seconds and answer 503
(``COCOA_REQUEST_LOCK_WAIT_SECONDS``), while a worker's batch may wait out a
long write. On SQLite the wait can differ per transaction (the
``BUSY_TIMEOUT_OPTION`` execution option, see :func:`_sqlite_engine`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cocoa.db.driver import BUSY_TIMEOUT_OPTION, IMMEDIATE_OPTION, POSTGRES, SQLITE_BUSY_TIMEOUT_MS
from cocoa.db.storage import private_dir, private_sqlite_file

__all__ = ["BUSY_TIMEOUT_OPTION", "IMMEDIATE_OPTION", "MEMORY_URL", "SQLITE_BUSY_TIMEOUT_MS", "make_engine",
           "normalise_url", "reading", "writing"]

# A throwaway database in memory (for building the app without a data directory).
MEMORY_URL = "sqlite://"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, lock_wait_ms: int | None = None, **kwargs: Any) -> sa.Engine:
    """An engine for ``url``. ``lock_wait_ms``: how long a statement waits for
    a lock before it fails (SQLite's busy timeout, PostgreSQL's
    ``lock_timeout``); None keeps SQLite's 30 s and PostgreSQL's "forever"."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, busy_ms=lock_wait_ms or SQLITE_BUSY_TIMEOUT_MS, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    if lock_wait_ms is not None:
        kwargs["connect_args"] = POSTGRES.lock_wait_connect_args(dict(kwargs.pop("connect_args", {})), lock_wait_ms)
    return sa.create_engine(url, **kwargs)


def _sqlite_engine(url: str, *, busy_ms: int, **kwargs: Any) -> sa.Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        # Voter data and password hashes: a new data folder and database file
        # are the owner's alone (SQLite gives -wal/-shm the file's mode).
        private_dir(Path(database).parent)
        private_sqlite_file(Path(database))
    engine = sa.create_engine(
        url,
        connect_args={"timeout": busy_ms / 1000, "check_same_thread": False, "isolation_level": None},
        **kwargs,
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        record.info[BUSY_TIMEOUT_OPTION] = busy_ms

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        _use_busy_timeout(conn, int(conn.get_execution_options().get(BUSY_TIMEOUT_OPTION, busy_ms)))
        # Engine writers (see ``writing``) take the lock up front: a deferred
        # transaction that read first and then writes fails with SQLITE_BUSY
        # without waiting if another writer committed in between. Everything
        # else uses a deferred BEGIN, so readers never queue behind a batch.
        if conn.get_execution_options().get(IMMEDIATE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _use_busy_timeout(conn: sa.Connection, busy_ms: int) -> None:
    """Set this connection's busy timeout if the transaction wants another
    one than it has: pooled connections move between a worker (which waits
    long) and request handlers (which answer 503 soon), so each transaction
    says what it wants. A PRAGMA only when it changes: a C call, no I/O."""
    info = conn.connection.info
    if info.get(BUSY_TIMEOUT_OPTION) != busy_ms:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={busy_ms}")
        info[BUSY_TIMEOUT_OPTION] = busy_ms


def reading(engine: sa.Engine) -> sa.Connection:
    """A connection for reads only (never takes SQLite's write lock)."""
    return engine.connect()


def writing(engine: sa.Engine) -> sa.Engine:
    """The same engine, but SQLite transactions take the write lock at BEGIN."""
    return engine.execution_options(**{IMMEDIATE_OPTION: True})



