"""Cutting a voter file into batches of lines: where every batch starts and ends.

Cutting is cheap (find line ends, skip blank lines) and stays with the
worker, which holds the file (it lives in the database); parsing the lines
may happen in a helper process (see :mod:`cocoa.jobs.pipeline`), so a
:class:`Lines` is all that parse gets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from cocoa.domain.voter_files import Layout, is_blank, iter_records

Position = tuple[int, int]  # (byte offset, row number) where a batch starts: its checkpoint


@dataclass(slots=True)
class Lines:
    """One batch's lines as cut from the file, and where the next batch starts."""

    numbers: list[int]
    raws: list[bytes]
    offset: int
    row: int
    done: bool  # no non-blank line after these


def cut_batches(stream: IO[bytes], offset: int, row: int, layout: Layout,
                size: int, end_row: int | None = None) -> Iterator[Lines]:
    """Successive batches of ``size`` non-blank lines from ``offset`` on.

    A batch ends just before the next non-blank line, so blank lines between
    two batches belong to the first and a checkpoint never points at one; the
    last batch (``done``) ends at the end of the file.
    """
    numbers: list[int] = []
    raws: list[bytes] = []
    for line in iter_records(stream, offset, row, layout):  # a multi-line record is one
        if end_row is not None and line.number >= end_row:
            break  # a group's child stops where the next child's rows start
        if not is_blank(line.raw, layout):
            if len(numbers) >= size:
                yield Lines(numbers, raws, offset, row, False)
                numbers, raws = [], []
            numbers.append(line.number)
            raws.append(line.raw)
        offset, row = line.end, line.number + line.span
    yield Lines(numbers, raws, offset, row, True)


def one_batch(open_upload: Callable[[], IO[bytes]], offset: int, row: int, layout: Layout,
              size: int, end_row: int | None = None) -> Lines:
    """The batch that starts at ``offset`` (and ends before ``end_row``)."""
    stream = open_upload()
    try:
        return next(cut_batches(stream, offset, row, layout, size, end_row))
    finally:
        stream.close()


def batches_from(open_upload: Callable[[], IO[bytes]], offset: int, row: int, layout: Layout,
                 size: int, end_row: int | None = None) -> Iterator[tuple[Position, Lines]]:
    """Every batch from ``offset`` to the end, each with the position it
    starts at; the file is open until the last is cut (or the generator is
    closed)."""
    stream = open_upload()
    try:
        for lines in cut_batches(stream, offset, row, layout, size, end_row):
            yield (offset, row), lines
            if lines.done:
                return
            offset, row = lines.offset, lines.row
    finally:
        stream.close()
