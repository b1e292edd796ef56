"""A parsed batch of voters: the shape that crosses between processes.

A batch parsed in a helper process is pickled, sent and unpickled, and that
costs per object, not per byte: so a batch is a few lists column by column
(and, for PostgreSQL, one bytes object of finished COPY text), never an
object or a tuple of objects per voter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from cocoa.jobs.types import ItemError

# A household as the batch's last row living there describes it: the
# HOUSEHOLD_COLUMNS from ``street_line`` to ``precinct``. Plain values on
# both backends: only the households missing from the database are written,
# and the write formats just those.
Home = tuple[str | None, ...]


@dataclass(slots=True)
class Voters:
    """A batch's voters to write, as the parser leaves them, column by column.

    Each voter's row holds the WRITE_COLUMNS up to ``import_job_id``
    (canonical values cut to the column sizes, dates as ISO text, the source
    record as JSON text): for SQLite a tuple in ``values``; for PostgreSQL
    its COPY text up to the tab before ``household_id``, all of them one
    after another in ``text``, voter ``i``'s ending at ``ends[i]``. The write
    adds the household id and timestamps.
    """

    ids: list[str] = field(default_factory=list)  # external ids
    digests: list[str] = field(default_factory=list)  # record hashes
    keys: list[str | None] = field(default_factory=list)  # household keys
    rows: list[int] = field(default_factory=list)  # row numbers in the file
    values: list[tuple[Any, ...]] = field(default_factory=list)  # SQLite
    text: bytes = b""  # PostgreSQL
    ends: list[int] = field(default_factory=list)  # PostgreSQL

    def __len__(self) -> int:
        return len(self.ids)

    def line(self, i: int, view: memoryview) -> memoryview:
        """Voter ``i``'s COPY text, from ``view`` (of :attr:`text`), uncopied."""
        return view[self.ends[i - 1] if i else 0:self.ends[i]]

    def only(self, keep: list[int]) -> Voters:
        """These voters only (by position), in this order."""
        def pick(column: list[Any]) -> list[Any]:
            return [column[i] for i in keep] if column else []

        chosen = Voters(pick(self.ids), pick(self.digests), pick(self.keys), pick(self.rows),
                        pick(self.values))
        if self.ends:
            view = memoryview(self.text)
            lines = [self.line(i, view) for i in keep]
            chosen.text, chosen.ends = b"".join(lines), list(accumulate(map(len, lines)))
        return chosen


@dataclass(slots=True)
class Read:
    """One batch worth of rows, parsed, before any database work."""

    voters: Voters = field(default_factory=Voters)
    homes: dict[str, Home] = field(default_factory=dict)  # by household key
    errors: list[ItemError] = field(default_factory=list)
    processed: int = 0
    failed: int = 0
    warnings: int = 0
    superseded: int = 0
    offset: int = 0
    row: int = 0
    done: bool = True
