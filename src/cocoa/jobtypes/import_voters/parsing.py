"""Parsing a batch of lines into voters to write and item errors.

Everything a row needs that does not depend on the database's state happens
here (record JSON, hash, the row as the write sends it), so that it can run
in a helper process: the :class:`Parser` is built from plain, picklable
values, and what it returns (:mod:`.parsed`) is shaped to cross cheaply.
"""

from __future__ import annotations

import hashlib
from itertools import accumulate
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from cocoa.db.copytext import copy_line, json_copy_text
from cocoa.db.tables import voters
from cocoa.domain.voter_files import (
    CANONICAL_FIELDS,
    PARSER_VERSION,
    Header,
    Layout,
    Line,
    RowIssue,
    RowReader,
)
from cocoa.domain.voter_files.limits import MAX_LINE_BYTES
from cocoa.jobs.types import ItemError
from cocoa.jobtypes.import_voters.lines import Lines
from cocoa.jobtypes.import_voters.parsed import Read

VOTER_COLUMNS = CANONICAL_FIELDS  # what RowReader.parse_row gives, in this order
_LENGTHS = {c.name: c.type.length if isinstance(c.type, sa.String) and c.type.length
            else 1 << 30 for c in voters.c}
# (position, size) of the sized text columns among VOTER_COLUMNS: the only
# values that can need truncating, so the only ones a row checks.
_VOTER_LIMITS = tuple(sorted(((i, _LENGTHS[name]) for i, name in enumerate(VOTER_COLUMNS)
                             if _LENGTHS[name] < 1 << 30), key=lambda limit: limit[1]))
_pick_sized = itemgetter(*(i for i, _ in _VOTER_LIMITS))  # all str or None
_DATE_SLOTS = tuple(i for i, c in enumerate(VOTER_COLUMNS)
                    if isinstance(voters.c[c].type, sa.Date))
COUNTY, PRECINCT = VOTER_COLUMNS.index("county"), VOTER_COLUMNS.index("precinct")


class Parser:
    """Turns a batch of lines into voters to write and item errors.

    What crosses between processes is kept to a few objects per batch (the
    pickling cost is per object rather than per byte), and for PostgreSQL
    (``copy_text``) the row is finished COPY text, so the worker does not
    format it either.
    """

    def __init__(self, layout: Layout, header: Header, job_id: str, *,
                 copy_text: bool) -> None:
        self.layout, self.header, self.job_id, self.copy_text = layout, header, job_id, copy_text
        self.reader = RowReader(layout, header)
        digest = hashlib.sha256("\x1f".join(header.names).encode()).hexdigest()
        # The part of every record hash's material that is the same for the
        # whole file; a row's is "\x1f".join((prefix, household key, *values)).
        self.hash_prefix = "\x1f".join((PARSER_VERSION, layout.name, digest)) + "\x1f"
        self.dates = _DateText()

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_parser, (self.layout, self.header, self.job_id, self.copy_text)

    def parse(self, lines: Lines) -> Read:
        """One flat loop on purpose: per row it is the parse, the record, the
        hash and an append (no record object, no per-row dict)."""
        out = Read(offset=lines.offset, row=lines.row, done=lines.done)
        parse, record_json, dates = self.reader.parse_row, self.reader.record_json, self.dates
        prefix = self.hash_prefix
        source, job_id, copy_text = self.layout.name, self.job_id, self.copy_text
        voters_, errors = out.voters, out.errors
        ids, digests, keys, rows = voters_.ids, voters_.digests, voters_.keys, voters_.rows
        texts: list[bytes] = []
        homes = out.homes  # the last row's description wins
        failed = warned = 0
        sha256 = hashlib.sha256
        for number, raw in zip(lines.numbers, lines.raws, strict=True):
            item = parse(Line(number, 0, 0, raw))
            if isinstance(item, RowIssue):
                failed += 1
                errors.append(item_error(item, self.original(number, raw)))
                continue
            external_id, values, source_values, home, warnings = item
            if warnings:
                warned += len(warnings)
                errors.extend(map(item_error, warnings))
            _truncate(values)
            for i in _DATE_SLOTS:
                values[i] = dates[values[i]]
            key = home.key if home else None
            material = prefix + (key or "") + "\x1f" + "\x1f".join(source_values)
            digest = sha256(material.encode("utf-8", "surrogatepass")).hexdigest()
            if home is not None:
                homes[home.key] = (*home[1:], values[COUNTY], values[PRECINCT])
            record = record_json(source_values)
            values += (source, external_id)
            if copy_text:  # the long record on its own: only its backslashes can need escaping
                texts.append(f"{copy_line(values)}\t{json_copy_text(record)}\t{digest}\t"
                             f"{job_id}\t".encode())
            else:
                voters_.values.append((*values, record, digest, job_id))
            ids.append(external_id)
            digests.append(digest)
            keys.append(key)
            rows.append(number)
        if copy_text:
            voters_.text, voters_.ends = b"".join(texts), list(accumulate(map(len, texts)))
        out.processed = len(lines.numbers)
        out.failed, out.warnings = failed, warned
        return out


    def original(self, number: int, raw: bytes) -> str | None:
        """A rejected row's line as text, for errors.csv: decoded as its row
        would be (a line no layout encoding reads is decoded as UTF-8 with
        replacement characters), without the line break; None for a line
        over the length limit, whose text was never read whole. Rejected
        rows are few, so this costs nothing on the rows that import."""
        if len(raw) > MAX_LINE_BYTES:
            return None
        text = self.reader.decode(Line(number, 0, 0, raw))
        if isinstance(text, RowIssue):
            text = raw.decode("utf-8", errors="replace").replace("\x00", "")
        return text.rstrip("\r\n")


def _rebuild_parser(layout: Layout, header: Header, job_id: str, copy_text: bool) -> Parser:
    return Parser(layout, header, job_id, copy_text=copy_text)


def _truncate(values: list[Any]) -> None:
    """Text cut to the column sizes (the full text is in the source record).

    The longest sized value is found at C speed first; only the columns
    smaller than it (by ascending size) need a look, usually none or one.
    """
    longest = max(map(len, filter(None, _pick_sized(values))), default=0)
    for i, size in _VOTER_LIMITS:
        if size >= longest:
            return
        value = values[i]
        if value is not None and len(value) > size:
            values[i] = value[:size]


def item_error(issue: RowIssue, original: str | None = None) -> ItemError:
    """``original``: the rejected row's line (warnings keep none: their row was imported)."""
    return ItemError(item_ref=f"row {issue.row}", code=issue.code, message=issue.message,
                     item_index=issue.row, severity="error" if issue.fatal else "warning",
                     original=original)


class _DateText(dict[Any, Any]):
    """date -> the ISO text (YYYY-MM-DD) both backends store for a date,
    memoised: a file has few distinct dates."""

    def __init__(self) -> None:
        super().__init__({None: None})

    def __missing__(self, value: Any) -> Any:
        text = self[value] = value.isoformat()
        return text
