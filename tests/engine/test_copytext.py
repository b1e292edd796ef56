"""``cocoa.db.copytext``: lines PostgreSQL's COPY reads back as the values
they were built from, for every character the format treats specially."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from cocoa.db.copytext import copy_line

TRICKY: list[tuple[Any, ...]] = [
    ("plain", "MUÑOZ", 7, None),
    ("back\\slash", "tab\there", 0, "new\nline"),
    ("carriage\rreturn", "\\N", -3, ""),  # the text \N is a value, not NULL
    ("\\", "\t", None, "\r\n"),
    ('{"NAME":"O\\"NEIL"}', "ends with backslash\\", 123456789, "x"),
    (None, None, None, None),
    ("", "  spaces  ", 1, "2020-02-29"),
]


def test_plain_rows_need_no_escaping() -> None:
    assert copy_line(["a", None, 7, "b"]) == "a\t\\N\t7\tb"
    assert copy_line(["a\\b", None]) == "a\\\\b\t\\N"
    assert copy_line(["\\N"]) == "\\\\N"


@pytest.mark.parametrize("row", TRICKY)
def test_postgres_reads_back_what_was_written(pg_url: str, row: tuple[Any, ...]) -> None:
    dsn = sa.make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TEMP TABLE t (a text, b text, n int, c text)")
        with conn.cursor() as cursor, cursor.copy("COPY t (a, b, n, c) FROM STDIN") as copy:
            copy.write((copy_line(row) + "\n").encode())
        assert conn.execute("SELECT a, b, n, c FROM t").fetchall() == [row]


def test_dates_as_iso_text(pg_url: str) -> None:
    dsn = sa.make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TEMP TABLE t (d date)")
        with conn.cursor() as cursor, cursor.copy("COPY t (d) FROM STDIN") as copy:
            copy.write((copy_line([date(1950, 1, 31).isoformat()]) + "\n").encode())
        assert conn.execute("SELECT d FROM t").fetchone() == (date(1950, 1, 31),)
