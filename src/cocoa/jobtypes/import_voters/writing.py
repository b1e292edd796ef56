"""A voter batch's database work, run by the engine in the batch transaction.

Households are created per normalised residence key, with the number of the
batch's voters that live there; after that, a household's ``voter_count``
moves by the voters that join or leave it, in the same transaction as the
voter writes (so a resumed batch never counts twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from cocoa.db.bulk import PostgresBulk, bind, bulk_for, chunks, json_param
from cocoa.db.copytext import copy_line
from cocoa.db.tables import households
from cocoa.domain import parcel_links
from cocoa.jobtypes.import_voters.parsed import Home, Voters
from cocoa.jobtypes.import_voters.sql import (
    HOUSEHOLD_COLUMNS,
    LINK_COLUMNS,
    RESERVE_HOUSEHOLD_IDS,
    VOTER_ON_CONFLICT,
    WRITE_COLUMNS,
    Statements,
    statements,
)

_HH_LENGTHS = {c.name: c.type.length for c in households.c
               if isinstance(c.type, sa.String) and c.type.length}
_HH_LIMITS = tuple((i, _HH_LENGTHS[c]) for i, c in enumerate(HOUSEHOLD_COLUMNS)
                   if c in _HH_LENGTHS and c not in LINK_COLUMNS)
_NO_LINK, _NO_LINK_TEXT = (None, None), "\\N\t\\N"  # as values; as COPY text


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Writer:
    """The batch's database work; the engine runs it in the batch transaction.

    Four to six statements per batch whatever its size: which voters exist
    (and their hash and household), which households exist, the missing
    households (inserted with their voter count: only this batch's voters can
    point at a household this transaction created), the voters, and the
    counts of the households that already existed and gained or lost voters.

    Calling it twice is harmless: it only reads what the reader left.
    """

    source: str
    mode: str
    voters: Voters
    homes: dict[str, Home]

    def __call__(self, conn: sa.Connection) -> dict[str, int]:
        bulk = bulk_for(conn)
        sql = statements(bulk)
        counts = {"voters_created": 0, "voters_updated": 0, "voters_unchanged": 0,
                  "voters_skipped": 0, "households_created": 0,
                  "households_linked_address": 0, "households_linked_building": 0}
        new, changed, left = self._classify(conn, sql, counts)
        if not new and not changed:
            return counts
        now = utcnow()
        copy = bulk.copier()
        stamp = now if copy else bind(conn, households.c.created_at, now)
        ids, created = self._households(conn, sql, new + changed, stamp, copy, counts)
        counts["households_created"] = len(created)
        if copy:
            tail = _stamps_text(now)
            copy.copy_lines(conn, "voters", WRITE_COLUMNS, self._lines(new, ids, tail))
            if changed:
                copy.copy_upsert(conn, "voters", WRITE_COLUMNS, self._lines(changed, ids, tail),
                                 VOTER_ON_CONFLICT)
        else:  # under SQLite's write lock the classification is exact: new rows are new
            if new:
                conn.exec_driver_sql(sql.insert_voters, self._rows(new, ids, stamp))
            if changed:
                conn.exec_driver_sql(sql.upsert_voters, self._rows(changed, ids, stamp))
        deltas = count_deltas(self.voters.keys, new, changed, left, ids, created)
        if deltas:
            by_id = {str(household): delta for household, delta in deltas.items()}  # JSON keys
            conn.exec_driver_sql(sql.shift_counts, {"now": stamp, "deltas": json_param(by_id)})
        return counts

    def _classify(self, conn: sa.Connection, sql: Statements, counts: dict[str, int],
                  ) -> tuple[list[int], list[int], list[int | None]]:
        """New / changed voters (by position) and the unchanged / skipped
        counts, against what is stored now; also the household each changed
        voter lived in until now."""
        existing: dict[str, tuple[str, int | None]] = {}
        for chunk in chunks(self.voters.ids):
            result = conn.exec_driver_sql(sql.existing,
                                          {"source": self.source, "ids": json_param(chunk)})
            existing.update((row[0], (row[1], row[2])) for row in result)
        new: list[int] = []
        changed: list[int] = []
        left: list[int | None] = []
        incremental = self.mode == "incremental"
        for i, (external_id, digest) in enumerate(zip(self.voters.ids, self.voters.digests,
                                                      strict=True)):
            current = existing.get(external_id)
            if current is None:
                if incremental:
                    counts["voters_skipped"] += 1
                else:
                    new.append(i)
            elif current[0] == digest:
                counts["voters_unchanged"] += 1
            else:
                changed.append(i)
                left.append(current[1])
        counts["voters_created"], counts["voters_updated"] = len(new), len(changed)
        return new, changed, left

    def _households(self, conn: sa.Connection, sql: Statements, pending: list[int], stamp: Any,
                    copy: PostgresBulk | None, counts: dict[str, int],
                    ) -> tuple[dict[str, int], set[int]]:
        """Household id per household key of the ``pending`` voters, and the
        ids of the households created for them (with the number of
        ``pending`` voters living there as their count, and their parcel
        when one has their address or building: one query for the batch;
        ``counts`` gets how many were linked, by method)."""
        joining: dict[str, int] = {}
        keys = self.voters.keys
        for i in pending:
            key = keys[i]
            if key is not None:
                joining[key] = joining.get(key, 0) + 1
        if not joining:
            return {}, set()
        ids = _household_ids(conn, sql, list(joining))
        missing = [key for key in joining if key not in ids]
        if not missing:
            return ids, set()
        links = parcel_links.links_by_key(conn, missing)
        for _pid, method in links.values():
            counts[f"households_linked_{method}"] += 1
        if copy:  # ids from the column's own sequence, in insert order: no re-read
            result = conn.exec_driver_sql(RESERVE_HOUSEHOLD_IDS, (len(missing),))
            new_ids = sorted(row[0] for row in result)
            tail = _stamps_text(stamp)
            linked = {key: f"{pid}\t{method}" for key, (pid, method) in links.items()}
            copy.copy_lines(conn, "households", ("id", *HOUSEHOLD_COLUMNS),
                            (f"{i}\t{copy_line(_household_values(key, self.homes[key]))}\t"
                             f"{linked.get(key, _NO_LINK_TEXT)}\t{joining[key]}".encode() + tail
                             for i, key in zip(new_ids, missing, strict=True)))
            created = dict(zip(missing, new_ids, strict=True))
        else:
            conn.exec_driver_sql(sql.insert_households, [
                (*_household_values(key, self.homes[key]), *links.get(key, _NO_LINK),
                 joining[key], stamp, stamp)
                for key in missing])
            created = _household_ids(conn, sql, missing)
        ids.update(created)
        return ids, set(created.values())

    def _rows(self, which: list[int], ids: dict[str, int], stamp: Any) -> list[tuple[Any, ...]]:
        """SQLite write rows: the parsed row, its household id, timestamps."""
        values, keys = self.voters.values, self.voters.keys
        return [(*values[i], ids[key] if (key := keys[i]) else None, stamp, stamp)
                for i in which]

    def _lines(self, which: list[int], ids: dict[str, int], tail: bytes,
               ) -> Iterator[bytes | memoryview]:
        """PostgreSQL COPY text, in pieces: per voter its parsed text (not
        copied), its household id and ``tail``."""
        texts = {key: b"%d" % id_ for key, id_ in ids.items()}
        voters_, keys, view = self.voters, self.voters.keys, memoryview(self.voters.text)
        for i in which:
            key = keys[i]
            yield voters_.line(i, view)
            yield texts[key] if key else b"\\N"
            yield tail


def _household_ids(conn: sa.Connection, sql: Statements, keys: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(keys):
        found.update((row[0], row[1]) for row in
                     conn.exec_driver_sql(sql.household_ids, {"keys": json_param(chunk)}))
    return found


def count_deltas(keys: list[str | None], new: list[int], changed: list[int],
                 left: list[int | None], ids: dict[str, int], created: set[int],
                 ) -> dict[int, int]:
    """How the voter count of each household that existed before the batch
    moves: +1 per voter joining it, -1 per voter leaving it (the households
    just created already have their count). Voters by position; ``keys``
    their household keys."""
    deltas: dict[int, int] = {}
    for i in new:
        key = keys[i]
        joined = ids[key] if key is not None else None
        if joined is not None and joined not in created:
            deltas[joined] = deltas.get(joined, 0) + 1
    for i, old in zip(changed, left, strict=True):
        key = keys[i]
        joined = ids[key] if key is not None else None
        if joined == old:
            continue
        if old is not None:
            deltas[old] = deltas.get(old, 0) - 1
        if joined is not None and joined not in created:
            deltas[joined] = deltas.get(joined, 0) + 1
    return {household: delta for household, delta in sorted(deltas.items()) if delta}


def _household_values(key: str, home: Home) -> list[str | None]:
    """The HOUSEHOLD_COLUMNS from ``address_key`` to ``precinct``, cut to size."""
    values = [key, *home]
    for i, limit in _HH_LIMITS:
        value = values[i]
        if value is not None and len(value) > limit:
            values[i] = value[:limit]
    return values


def _stamps_text(now: datetime) -> bytes:
    """The end of a COPY line: ``created_at`` and ``updated_at``."""
    return f"\t{now.isoformat()}\t{now.isoformat()}\n".encode()
