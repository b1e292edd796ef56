"""Finding the rows a later row of the same voter replaces, in bounded memory.

Last row wins across the whole file, so which rows are superseded is known
only after every id has been seen. A dict of every id to its last row is
the simple way, but it grows with the file (issue 18: memory must be flat
in the file size). Above :data:`IN_MEMORY_IDS` ids, the ``(id, row)`` pairs
are instead spilled to temporary files partitioned by a hash of the id, so
every repeat of an id lands in the same partition, and the partitions are
then read back one at a time: at most about :data:`IN_MEMORY_IDS` ids are in
memory at once, whatever the size of the file. Within a partition the pairs
are in file order, so the result is exactly the in-memory one.

What is kept for the run is only the superseded rows themselves (a row
number and the row that wins), which a real file has few of.
"""

from __future__ import annotations

import marshal
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import IO

# Ids held in memory at once (one partition); about 100 bytes each in a dict.
IN_MEMORY_IDS = 100_000
# Partitions once the ids spill: a file of up to this many times
# IN_MEMORY_IDS distinct ids keeps every partition within the bound.
PARTITIONS = 64
# Pairs written to a partition file per marshal record: amortises the call.
_FLUSH_PAIRS = 1_024


def superseded_rows(pairs: Iterable[tuple[str, int]]) -> dict[int, int]:
    """``{row: the later row that wins}`` for ``(voter id, row)`` pairs in file order.

    In memory while the file has few distinct ids (no temporary files for
    the usual upload); past :data:`IN_MEMORY_IDS` the ids seen so far (each
    with its last row) and all the pairs after them go to the partitions,
    which keeps each id's pairs in file order.
    """
    iterator = iter(pairs)
    last: dict[str, int] = {}
    superseded: dict[int, int] = {}
    if _scan(iterator, last, superseded, bound=IN_MEMORY_IDS):
        spilled = list(last.items())
        last.clear()
        superseded.update(_partitioned(spilled, iterator))
    return superseded


def _scan(pairs: Iterable[tuple[str, int]], last: dict[str, int], superseded: dict[int, int],
          bound: int | None = None) -> bool:
    """Record in ``superseded`` each row a later row of its id replaces,
    ``last`` holding each id's latest row; True if it stopped early because
    ``last`` grew past ``bound`` (the rest of ``pairs`` is still unread)."""
    for key, row in pairs:
        previous = last.get(key)
        if previous is not None:
            superseded[previous] = row
        last[key] = row
        if bound is not None and len(last) > bound:
            return True
    return False


def _partitioned(first: list[tuple[str, int]], rest: Iterable[tuple[str, int]]) -> dict[int, int]:
    """Spill ``first`` then ``rest`` to :data:`PARTITIONS` temporary files by
    hash of the id (the process's own ``hash``: the files live only as long
    as this call), then find the repeats one partition at a time."""
    with ExitStack() as stack:
        files = [stack.enter_context(tempfile.TemporaryFile(prefix="cocoa-ids-"))
                 for _ in range(PARTITIONS)]
        buffers: list[list[tuple[str, int]]] = [[] for _ in range(PARTITIONS)]
        for pairs in (first, rest):
            for pair in pairs:
                index = hash(pair[0]) % PARTITIONS
                buffer = buffers[index]
                buffer.append(pair)
                if len(buffer) >= _FLUSH_PAIRS:
                    marshal.dump(buffer, files[index])
                    buffer.clear()
            if pairs is first:
                first.clear()  # its memory back before the rest streams through
        superseded: dict[int, int] = {}
        for buffer, file in zip(buffers, files, strict=True):
            if buffer:
                marshal.dump(buffer, file)
            buffer.clear()
            file.seek(0)
            _scan(_read_back(file), {}, superseded)
        return superseded


def _read_back(file: IO[bytes]) -> Iterator[tuple[str, int]]:
    while True:
        try:
            chunk = marshal.load(file)
        except EOFError:
            return
        yield from chunk
