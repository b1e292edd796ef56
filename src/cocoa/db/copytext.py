"""Rows in PostgreSQL's ``COPY ... FROM STDIN`` text format, built in Python.

psycopg's ``Copy.write_row`` does this per value at C speed, but it has to
run in the process that holds the connection. A job that prepares its rows
in a helper process (the voter import does) encodes them there with
:func:`copy_line` and hands the worker finished bytes, which it only has to
join and send.

The format: fields separated by tabs, ``\\N`` for NULL, and a backslash,
tab, newline or carriage return inside a value written as ``\\\\``, ``\\t``,
``\\n``, ``\\r``
(https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def escape(value: Any) -> str:
    """One value as a COPY text field."""
    if value is None:
        return NULL
    return str(value).translate(_ESCAPES)


def copy_line(values: Sequence[Any]) -> str:
    """``values`` as one COPY text line, without the line end.

    Values are ``None``, text or anything whose ``str`` the column type reads
    (numbers, ISO dates). Nearly every row needs no escaping, which a few scans
    of the joined line prove: its only backslashes are the NULL markers (as
    many as there are ``None`` values; a value that is the text ``\\N`` has
    a backslash of its own and is escaped) and its only tabs the separators.
    Only the other rows pay for a per-value escape.
    """
    fields = [NULL if v is None else v if type(v) is str else str(v) for v in values]
    line = "\t".join(fields)
    if (line.count("\\") == values.count(None) and line.count("\t") == len(fields) - 1
            and "\n" not in line and "\r" not in line):
        return line
    return "\t".join(map(escape, values))


def json_copy_text(text: str) -> str:
    """JSON text as a COPY text field, faster than :func:`escape` for long
    records: JSON writes tabs, newlines and carriage returns inside strings
    as escapes, so its only character COPY treats specially is the
    backslash."""
    return text.replace("\\", "\\\\") if "\\" in text else text
