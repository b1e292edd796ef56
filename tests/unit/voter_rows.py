"""Reading every row of a voter file, for tests (an import reads in batches)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from cocoa.domain.voter_files import Line, RowIssue, RowReader, VoterRecord, is_blank, iter_lines


def iter_rows(stream: IO[bytes], reader: RowReader, offset: int,
              number: int) -> Iterator[tuple[Line, VoterRecord | RowIssue]]:
    """Every data row from ``offset`` on, parsed; blank lines are skipped."""
    for line in iter_lines(stream, offset, number):
        if not is_blank(line.raw, reader.layout):
            yield line, reader.parse(line)
