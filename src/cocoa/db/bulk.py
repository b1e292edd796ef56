"""Bulk writes below SQLAlchemy Core: the job types' hot paths, written once.

Why below Core: a batch writes thousands of rows, and Core processes every
bound parameter of every row in Python, which costs more than the database's
own work. So the job types hand the DB driver plain rows in its own
paramstyle, after converting each value once with its column type's own bind
processor (the stored form is exactly what Core would write): an
``executemany`` is then a C loop in sqlite3 and a pipeline in psycopg 3, and
PostgreSQL takes new rows as ``COPY`` text (see :mod:`cocoa.db.copytext`).

What differs between the backends (the parameter marker, JSON casts, COPY)
is one object per backend, :func:`bulk_for`; the rest are plain functions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from cocoa import jsontext
from cocoa.db.driver import PostgresDriver, SqliteDriver, driver_for

IN_CHUNK = 5000  # ids per IN (...) list or JSON list: far below both backends' parameter limits
COPY_PIECES = 1500  # pieces joined per COPY write: the server parses while the rest are joined


def chunks(items: list[Any], size: int = IN_CHUNK) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def bind(conn: sa.Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` as Core would hand it to the driver for ``column`` on this dialect."""
    dialect = conn.dialect
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process else value


def json_param(value: Any) -> str:
    """A list or dict as one JSON text parameter (both backends read a JSON
    list faster than the driver adapts a long Python list)."""
    return jsontext.dumps(value).decode()


class SqliteBulk:
    """SQLite: executemany only."""

    name: ClassVar[str] = SqliteDriver.name
    placeholder: ClassVar[str] = SqliteDriver.placeholder
    supports_copy: ClassVar[bool] = False
    _jsonb_mark: ClassVar[str] = "?"  # JSON columns are text

    def marks(self, columns: Sequence[str], *, jsonb: Collection[str] = ()) -> str:
        """One parameter marker per column, for a hand-written ``VALUES (...)``;
        the ``jsonb`` columns cast where the backend stores JSON as a type."""
        return ", ".join(self._jsonb_mark if column in jsonb else self.placeholder
                         for column in columns)

    def copier(self) -> PostgresBulk | None:
        """The writer's COPY side, or None where the backend has no COPY."""
        return None


class PostgresBulk(SqliteBulk):
    """PostgreSQL through psycopg 3: executemany, and COPY for new rows."""

    name: ClassVar[str] = PostgresDriver.name
    placeholder: ClassVar[str] = PostgresDriver.placeholder
    supports_copy: ClassVar[bool] = True
    _jsonb_mark: ClassVar[str] = "CAST(%s AS JSONB)"

    def copier(self) -> PostgresBulk | None:
        return self

    def copy_lines(self, conn: sa.Connection, table: str, columns: Sequence[str],
                   pieces: Iterable[bytes | memoryview]) -> None:
        """``COPY`` of COPY text given in pieces (lines or parts of lines),
        joined and sent :data:`COPY_PIECES` at a time."""
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            chunk: list[bytes | memoryview] = []
            for piece in pieces:
                chunk.append(piece)
                if len(chunk) == COPY_PIECES:
                    copy.write(b"".join(chunk))
                    chunk.clear()
            if chunk:
                copy.write(b"".join(chunk))

    def copy_upsert(self, conn: sa.Connection, table: str, columns: Sequence[str],
                    pieces: Iterable[bytes | memoryview], on_conflict: str) -> None:
        """``COPY`` into a temporary table, then one INSERT ... SELECT ... ``on_conflict``."""
        stage, cols = f"_stage_{table}", ", ".join(columns)
        conn.exec_driver_sql(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
                             f"SELECT {cols} FROM {table} WITH NO DATA")
        self.copy_lines(conn, stage, columns, pieces)
        conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} {on_conflict}")
        conn.exec_driver_sql(f"DROP TABLE {stage}")


Bulk = SqliteBulk | PostgresBulk
SQLITE, POSTGRES = SqliteBulk(), PostgresBulk()
_BY_NAME: dict[str, Bulk] = {SQLITE.name: SQLITE, POSTGRES.name: POSTGRES}


def bulk_for(bind: sa.Engine | sa.Connection | str) -> Bulk:
    """The bulk writer of an engine, a connection or a dialect name."""
    return _BY_NAME[driver_for(bind).name]  # driver_for refuses a database we do not run on


_COMPILED: dict[tuple[int, str], Any] = {}


def driver_executemany(conn: sa.Connection, statement: sa.Update,
                       rows: list[dict[str, Any]]) -> None:
    """A Core statement run as an ``executemany`` straight through the driver.

    Compiled once per dialect; each parameter's bind processor (e.g.
    SQLite's datetime-to-text) runs only where the type has one, and once
    per distinct value; the driver gets plain rows in its own paramstyle.
    """
    key = (id(statement), conn.dialect.name)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = _COMPILED[key] = statement.compile(dialect=conn.dialect)
    processors = {
        name: proc for name, bind_ in compiled.binds.items()
        if (proc := bind_.type.dialect_impl(conn.dialect).bind_processor(conn.dialect))
    }
    fixed = compiled.params  # literal values written into the statement
    names = list(compiled.positiontup or fixed)
    processed: dict[tuple[str, Any], Any] = {}
    for name, proc in processors.items():  # once per distinct value, not per row
        for raw in {row.get(name, fixed[name]) for row in rows}:
            processed[(name, raw)] = raw if raw is None else proc(raw)
    plain = [n for n in names if n not in processors]
    params: list[Any] = []
    for row in rows:
        item = {n: row.get(n, fixed[n]) for n in plain}
        for name in processors:
            item[name] = processed[(name, row.get(name, fixed[name]))]
        params.append(item if compiled.positiontup is None else tuple(item[n] for n in names))
    conn.exec_driver_sql(compiled.string, params)
