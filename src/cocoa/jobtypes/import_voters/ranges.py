"""Cutting a voter file over the per-job limit into row ranges (job groups).

Each child job of a group (:mod:`cocoa.jobs.groups`) imports the rows of
one contiguous range of the same stored file: ``params["range"]`` is where
it starts (byte offset and row number of its first data row, like a
checkpoint) and the row number where the next range starts (``end_row``,
None for the last). Ranges are cut with the same record reader the batches
use, so a quoted field spanning lines never straddles two children, and
blank lines between two ranges belong to the first.

Last-row-wins holds across the whole file: every child looks for repeated
ids over the whole file (see ``job._superseded_rows``), so a row a later
child replaces is not written by an earlier one, and the households come
out as they would from one job.
"""

from __future__ import annotations

from typing import IO, Any

from cocoa.domain.voter_files import Layout, is_blank, iter_records
from cocoa.jobs.groups import Part
from cocoa.jobs.types import Params

Position = tuple[int, int]


def split_rows(stream: IO[bytes], params: Params, layout: Layout, data_offset: int,
               first_row: int, limit: int) -> list[Part]:
    """Parts of at most ``limit`` data rows each (``params["rows"]`` in all)."""
    starts: list[Position] = [(data_offset, first_row)]
    count = 0
    for line in iter_records(stream, data_offset, first_row, layout):
        if is_blank(line.raw, layout):
            continue
        if count and count % limit == 0:
            starts.append((line.start, line.number))
        count += 1
    parts = []
    for index, (offset, row) in enumerate(starts):
        end_row = starts[index + 1][1] if index + 1 < len(starts) else None
        first = index * limit + 1
        last = min(first + limit - 1, count)
        child = {**params, "rows": last - first + 1,
                 "range": {"offset": offset, "row": row, "end_row": end_row}}
        parts.append(Part(child, first, last))
    return parts


def range_of(params: Params) -> tuple[Position | None, int | None]:
    """(where a child starts, the row where the next child starts); (None,
    None) for a job over the whole file."""
    value: Any = params.get("range")
    if not isinstance(value, dict):
        return None, None
    end = value.get("end_row")
    return (int(value["offset"]), int(value["row"])), (int(end) if end is not None else None)
