"""What differs between the two databases, one object per backend.

The rest of the code asks ``driver_for(engine_or_connection)`` instead of
testing ``dialect.name``: each difference (parameter marker, row locks,
upserts, NOTIFY, lock waits, date arithmetic, array parameters) is then
named once, here, and a third backend would be one more class rather than
a hunt for ``if postgres`` branches (River's driver interface).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from cocoa.config import Settings

# A worker may wait this long for SQLite's write lock (another process's long
# batch); request handlers give up sooner and answer 503.
SQLITE_BUSY_TIMEOUT_MS = 30_000
IMMEDIATE_OPTION = "cocoa_immediate"
BUSY_TIMEOUT_OPTION = "cocoa_busy_timeout_ms"


class Driver(Protocol):
    """The backend-specific half of every database operation."""

    name: ClassVar[str]  # SQLAlchemy's dialect name
    title: ClassVar[str]  # the product's name, for messages
    placeholder: ClassVar[str]  # the DB-API parameter marker for hand-written SQL
    supports_copy: ClassVar[bool]  # COPY FROM STDIN for bulk writes
    notifies: ClassVar[bool]  # LISTEN/NOTIFY wakes idle workers on other hosts
    writable_ctes: ClassVar[bool]  # INSERT/UPDATE inside WITH: several writes in one round trip

    def insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT for ``table``, with ``on_conflict_do_*`` for upserts."""

    def lock_rows(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """``query`` taking row locks where the backend has them."""

    def skip_locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """``query`` locking its rows and passing over rows others hold."""

    def notify_column(self, channel: str, payload: sa.ColumnElement[Any]) -> sa.ColumnElement[Any] | None:
        """An expression to add to a RETURNING that sends a NOTIFY, or None."""

    def notify(self, conn: sa.Connection, channel: str, payload: str) -> None:
        """Queue a NOTIFY (delivered at COMMIT); nothing without LISTEN/NOTIFY."""

    def lock_wait_connect_args(self, connect_args: dict[str, Any], lock_wait_ms: int) -> dict[str, Any]:
        """``connect_args`` with a per-session lock wait of ``lock_wait_ms``."""

    def seconds_between(self, start: sa.ColumnElement[Any], end: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """``end - start`` in seconds."""

    def key_in(self, column: sa.ColumnElement[str], keys: list[str]) -> sa.ColumnElement[bool]:
        """``column IN keys`` bound as ONE parameter."""

    def autocommit(self, engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
        """A connection for statements that are atomic on their own."""

    def single_statement(self, engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
        """Like :meth:`autocommit`, for a write: one statement, no BEGIN/COMMIT where that saves round trips."""

    def worker_engine(self, engine: sa.Engine, settings: Settings) -> sa.Engine:
        """The engine a worker's lease protocol and batches run on."""

    def dispose_worker_engine(self, worker_engine: sa.Engine) -> None:
        """Close what :meth:`worker_engine` opened of its own."""

    def fetch_binary(self, conn: sa.Connection, sql: str, params: tuple[Any, ...]) -> Any:
        """The first column of the first row of ``sql`` (written with
        :attr:`placeholder`), or None; bytes travel in the backend's binary
        format where it has one."""

    def json_values(self, name: str, sql_type: str = "text") -> str:
        """A subquery (hand-written SQL, named parameter ``name``) listing the
        elements of the JSON array bound to ``name``: an id or key list as
        one parameter, however long."""

    def floor_int(self, value: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        """``floor(value)`` as an integer, for a value known to be positive."""

    def database_file(self, url: sa.URL) -> Path | None:
        """The file the database lives in, if it is a file on this machine."""

    def listen_dsn(self, engine: sa.Engine) -> str | None:
        """A DSN for a plain driver connection that LISTENs, or None without LISTEN/NOTIFY."""

    def storage_location(self, url: sa.URL) -> str:
        """Where an operator looks when storage fails: a folder's disk, or a server."""


class SqliteDriver:
    """SQLite: one writer at a time (the lock taken at BEGIN, see
    :mod:`cocoa.db.engine`), so there are no row locks to take or skip."""

    name: ClassVar[str] = "sqlite"
    title: ClassVar[str] = "SQLite"
    placeholder: ClassVar[str] = "?"
    supports_copy: ClassVar[bool] = False
    notifies: ClassVar[bool] = False
    writable_ctes: ClassVar[bool] = False

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def lock_rows(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query  # the transaction already holds the database's write lock

    def skip_locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query

    def notify_column(self, channel: str, payload: sa.ColumnElement[Any]) -> sa.ColumnElement[Any] | None:
        return None

    def notify(self, conn: sa.Connection, channel: str, payload: str) -> None:
        return None  # workers of one SQLite file share a host: they poll or are woken in-process

    def lock_wait_connect_args(self, connect_args: dict[str, Any], lock_wait_ms: int) -> dict[str, Any]:
        return connect_args | {"timeout": lock_wait_ms / 1000}

    def seconds_between(self, start: sa.ColumnElement[Any], end: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0

    def key_in(self, column: sa.ColumnElement[str], keys: list[str]) -> sa.ColumnElement[bool]:
        # Expanding a thousand-item IN list costs more Python time than the lookup.
        values = sa.select(sa.column("value", sa.String)).select_from(
            sa.func.json_each(sa.literal(json.dumps(keys), sa.String)))
        return column.in_(values)

    def autocommit(self, engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
        return engine.connect()  # a deferred BEGIN: never takes the write lock for a read

    def single_statement(self, engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
        return engine.begin()  # SQLite's BEGIN and COMMIT are in-process calls

    def worker_engine(self, engine: sa.Engine, settings: Settings) -> sa.Engine:
        # A batch may wait out a long write of another process; the API's
        # requests give up sooner (the engine's own busy timeout) and answer 503.
        return engine.execution_options(**{IMMEDIATE_OPTION: True, BUSY_TIMEOUT_OPTION: SQLITE_BUSY_TIMEOUT_MS})

    def dispose_worker_engine(self, worker_engine: sa.Engine) -> None:
        return None  # it shares the main engine's pool

    def fetch_binary(self, conn: sa.Connection, sql: str, params: tuple[Any, ...]) -> Any:
        return conn.exec_driver_sql(sql, params).scalar()

    def json_values(self, name: str, sql_type: str = "text") -> str:
        return f"SELECT value FROM json_each(:{name})"  # json_each already types numbers

    def floor_int(self, value: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        # SQLite may be built without math functions, but its CAST truncates,
        # which for a positive value is floor.
        return sa.cast(value, sa.Integer)

    def database_file(self, url: sa.URL) -> Path | None:
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            return None
        return Path(url.database)

    def listen_dsn(self, engine: sa.Engine) -> str | None:
        return None

    def storage_location(self, url: sa.URL) -> str:
        return f"the disk holding {Path(url.database or '.').resolve().parent}"


class PostgresDriver:
    """PostgreSQL through psycopg 3: row locks, SKIP LOCKED, NOTIFY, COPY."""

    name: ClassVar[str] = "postgresql"
    title: ClassVar[str] = "PostgreSQL"
    placeholder: ClassVar[str] = "%s"
    supports_copy: ClassVar[bool] = True
    notifies: ClassVar[bool] = True
    writable_ctes: ClassVar[bool] = True

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def lock_rows(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query.with_for_update()

    def skip_locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        # Concurrent claims pass each other instead of queueing.
        return query.with_for_update(skip_locked=True)

    def notify_column(self, channel: str, payload: sa.ColumnElement[Any]) -> sa.ColumnElement[Any] | None:
        return sa.func.pg_notify(channel, payload).label("notified")

    def notify(self, conn: sa.Connection, channel: str, payload: str) -> None:
        conn.execute(_NOTIFY, {"channel": channel, "payload": payload})

    def lock_wait_connect_args(self, connect_args: dict[str, Any], lock_wait_ms: int) -> dict[str, Any]:
        options = f"{connect_args.get('options', '')} -c lock_timeout={int(lock_wait_ms)}".strip()
        return connect_args | {"options": options}

    def seconds_between(self, start: sa.ColumnElement[Any], end: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.extract("epoch", end - start)

    def key_in(self, column: sa.ColumnElement[str], keys: list[str]) -> sa.ColumnElement[bool]:
        return column == sa.any_(sa.literal(keys, postgresql.ARRAY(sa.String)))

    def autocommit(self, engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
        # Saves the BEGIN and ROLLBACK round trips around a request's reads
        # (at READ COMMITTED a transaction gives them no common snapshot anyway).
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def single_statement(self, engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
        # No explicit transaction: the BEGIN and COMMIT round trips dominate small jobs.
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def worker_engine(self, engine: sa.Engine, settings: Settings) -> sa.Engine:
        """Worker transactions commit without waiting for fsync.

        Safe because each of them is atomic and self-describing: if the
        server crashes, it loses at most the last moment of *whole* batches
        (data and checkpoint together), and the engine redoes them from the
        checkpoint that survived - nothing twice, nothing lost. It removes a
        disk flush per claim and per batch. Job creation and control use the
        normal, fully durable engine: a job the API answered 202 for never
        disappears. (SQLite in WAL mode with synchronous=NORMAL already
        behaves this way.)

        A worker frozen mid-transaction (a paused VM, SIGSTOP) would hold its
        job's row lock forever and no lease could rescue the job, so the
        server ends such sessions after twice the lease (at least a minute).

        No pre-ping: it would be a round trip on every checkout. After a
        server restart the first statement on a stale connection fails, the
        pool drops all its connections, and the worker treats it as "database
        unavailable" (the job resumes from its checkpoint) - the chaos suite
        restarts PostgreSQL mid-run to keep this honest.
        """
        idle_ms = int(max(60.0, 2 * settings.lease_seconds) * 1000)
        return sa.create_engine(
            engine.url, pool_pre_ping=False, pool_size=5, max_overflow=10,
            connect_args={"options": f"-c synchronous_commit=off -c idle_in_transaction_session_timeout={idle_ms}"},
        )

    def dispose_worker_engine(self, worker_engine: sa.Engine) -> None:
        worker_engine.dispose()

    def fetch_binary(self, conn: sa.Connection, sql: str, params: tuple[Any, ...]) -> Any:
        # The default text format is hex: twice the bytes, encoded by the
        # server and decoded here.
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor(binary=True) as cursor:
            row = cursor.execute(sql, params).fetchone()
        return row[0] if row else None

    def json_values(self, name: str, sql_type: str = "text") -> str:
        return f"SELECT value::{sql_type} FROM json_array_elements_text(%({name})s::json)"

    def floor_int(self, value: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        return sa.cast(sa.func.floor(value), sa.Integer)

    def database_file(self, url: sa.URL) -> Path | None:
        return None  # its files are the server's

    def listen_dsn(self, engine: sa.Engine) -> str | None:
        # psycopg's own connect() takes the URL without SQLAlchemy's "+psycopg".
        return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def storage_location(self, url: sa.URL) -> str:
        return f"the PostgreSQL server at {url.host or 'localhost'}:{url.port or 5432}"


_NOTIFY = sa.select(sa.func.pg_notify(sa.bindparam("channel", type_=sa.String),
                                      sa.bindparam("payload", type_=sa.String)))

SQLITE = SqliteDriver()
POSTGRES = PostgresDriver()
_BY_NAME: dict[str, Driver] = {SQLITE.name: SQLITE, POSTGRES.name: POSTGRES}


def driver_errors() -> tuple[type[Exception], ...]:
    """The exception classes of every backend's DB-API driver (a job type
    may use the raw driver connection, e.g. COPY, and raise them unwrapped)."""
    classes: tuple[type[Exception], ...] = (sqlite3.Error,)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return classes
    return (*classes, psycopg.Error)


def connection_lost(exc: BaseException) -> bool:
    """Is ``exc`` a driver's own "the database went away / is locked" error
    (raised unwrapped by a job type that used the driver connection)?"""
    if isinstance(exc, sqlite3.OperationalError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def driver_for(bind: sa.Engine | sa.Connection | str) -> Driver:
    """The driver of an engine, a connection or a dialect name."""
    name = bind if isinstance(bind, str) else bind.dialect.name
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"Unsupported database {name!r}: Cocoa runs on SQLite or PostgreSQL.") from None
