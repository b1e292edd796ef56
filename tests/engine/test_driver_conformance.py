"""Each backend's driver object answers the same questions the same way.

The code above ``cocoa.db`` asks the driver instead of testing the dialect;
these are the operations moved there last, run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from cocoa.db.driver import connection_lost, driver_errors, driver_for
from cocoa.db.engine import make_engine


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def test_json_values_lists_a_json_array_parameter(engine: sa.Engine) -> None:
    driver = driver_for(engine)
    with engine.connect() as conn:
        texts = conn.exec_driver_sql(f"SELECT value FROM ({driver.json_values('keys')}) AS v ORDER BY 1",
                                     {"keys": json.dumps(["b", "a", "c"])}).scalars().all()
        total = conn.exec_driver_sql(f"SELECT sum(value) FROM ({driver.json_values('ids', 'int')}) AS v",
                                     {"ids": json.dumps([1, 2, 40])}).scalar_one()
    assert texts == ["a", "b", "c"]
    assert int(total) == 43


def test_floor_int_is_floor_for_positive_values(engine: sa.Engine) -> None:
    driver = driver_for(engine)
    values = [0.0, 0.2, 1.99999, 2.0, 183.5]
    with engine.connect() as conn:
        got = [conn.scalar(sa.select(driver.floor_int(sa.literal(v, sa.Float)))) for v in values]
    assert got == [0, 0, 1, 2, 183]


def test_database_file_only_for_a_local_file(engine: sa.Engine) -> None:
    driver = driver_for(engine)
    path = driver.database_file(engine.url)
    if driver.name == "sqlite":
        assert path is not None and path.name == "cocoa.db"
        assert driver.database_file(sa.make_url("sqlite://")) is None
        assert driver.database_file(sa.make_url("sqlite:///:memory:")) is None
    else:
        assert path is None


def test_listen_dsn_only_where_notify_exists(engine: sa.Engine) -> None:
    driver = driver_for(engine)
    dsn = driver.listen_dsn(engine)
    assert (dsn is not None) == driver.notifies
    if dsn is not None:
        assert dsn.startswith("postgresql://") and "+psycopg" not in dsn


def test_raw_driver_errors_are_recognised(engine: sa.Engine) -> None:
    """A job type using the raw driver connection raises the driver's own
    exceptions: the API and the worker must still know them."""
    raw = engine.raw_connection()
    try:
        with pytest.raises(Exception) as info:
            raw.cursor().execute("SELECT * FROM no_such_table")
    finally:
        raw.close()
    assert isinstance(info.value, driver_errors())


def test_connection_lost_is_the_operational_kind_only() -> None:
    assert connection_lost(sqlite3.OperationalError("database is locked"))
    assert not connection_lost(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not connection_lost(ValueError("not a database error"))
