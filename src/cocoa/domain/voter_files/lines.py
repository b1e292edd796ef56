"""Physical lines of a voter file, on bytes.

Why line by line on bytes, not ``csv.reader`` over a text stream:

* an unmatched ``"`` can only ever damage its own line (a quoting reader that
  may span lines swallows every following record until the next quote);
* the byte offset of every line is known, so a job can checkpoint "the next
  unread byte" and resume there after a crash without re-reading the file;
* each line is decoded on its own (see :mod:`.row_reader`), so one Latin-1
  ``MUÑOZ`` in a UTF-8 file costs that line a fallback decode, not the file;
* memory stays flat whatever the file size.

Multi-line quoted fields: none of the public layouts has them, and there a
row broken across lines is reported as ragged rather than silently merged.
Hand-made and vendor files (Excel) do have them; for a layout that says so
(``multiline``), :func:`iter_records` joins the physical lines of one quoted
record, strictly (see there). Row numbers are physical line numbers (the header is
row 1, blank lines keep their number), which is what a person sees in an
editor or spreadsheet.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterator
from functools import lru_cache, partial
from typing import IO, NamedTuple

from cocoa.domain.voter_files.layouts import Layout
from cocoa.domain.voter_files.limits import MAX_HEADER_BYTES, MAX_LINE_BYTES

_SNIFF_LINE = MAX_HEADER_BYTES + 2  # a header that is not refused, with its line ending
_READ_BLOCK = 1024 * 1024
_LINE_END = re.compile(rb"\r\n?|\n")


class Line(NamedTuple):
    """One physical line: its number, where it starts, where the next starts.

    A named tuple rather than a frozen dataclass: one is made per line (three
    passes over every file), and a frozen dataclass's ``__init__`` costs
    several times as much.
    """

    number: int
    start: int
    end: int
    raw: bytes
    span: int = 1  # physical lines it covers (more than one: a multi-line record)


def iter_lines(stream: IO[bytes], offset: int, number: int,
               max_line: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Yield lines from ``offset`` (which must be a line start), numbered from
    ``number``; line endings (LF, CRLF, or a bare CR in a file whose lines end
    that way) are removed from ``raw``.

    At most ``max_line`` bytes of a line are ever held: a longer line is
    yielded with its true ``start`` and ``end`` but a ``raw`` of its first
    ``max_line`` bytes plus a NUL (see :func:`_overlong`), so ``len(raw) >
    max_line`` tells the reader it was too long, and the rest is skipped
    at C speed without being kept.
    """
    if cr_line_endings(stream):
        yield from _iter_cr_lines(stream, offset, number, max_line)
        return
    stream.seek(offset)
    position = offset
    limit = max_line + 2  # room for a CRLF after a line of max_line bytes
    for chunk in iter(partial(stream.readline, limit), b""):
        end = position + len(chunk)
        if len(chunk) == limit and chunk[-1] != 0x0A:  # cut short: longer than max_line
            end += _skip_rest_of_line(stream)
            yield Line(number, position, end, _overlong(chunk, max_line))
        else:
            yield Line(number, position, end, chunk.rstrip(b"\r\n"))
        position = end
        number += 1


def _overlong(start: bytes | memoryview, max_line: int) -> bytes:
    """The ``raw`` of a line longer than ``max_line``: its first ``max_line``
    bytes and a NUL, so that it is longer than any line that fits and never
    blank (a line of spaces that long still has to be reported: what follows
    the kept part is unknown)."""
    return b"".join((memoryview(start)[:max_line], b"\x00"))  # one copy, not two


def _cut(raw: bytes, max_line: int) -> bytes:
    return raw if len(raw) <= max_line else _overlong(raw, max_line)


def _skip_rest_of_line(stream: IO[bytes]) -> int:
    """Read past the end of the current line (LF, or the end of the file)
    without keeping it; the number of bytes skipped."""
    skipped = 0
    while piece := stream.readline(_READ_BLOCK):
        skipped += len(piece)
        if piece[-1] == 0x0A:
            break
    return skipped


def cr_line_endings(stream: IO[bytes]) -> bool:
    """Does the file end its lines with a bare CR (old Mac, Excel's "CSV
    (Macintosh)")? Decided once per pass from the first line, so the per-line
    loop of every other file stays as it was (and a stray CR inside a line of
    an LF file stays data)."""
    stream.seek(0)
    return _has_bare_cr(stream.readline(_SNIFF_LINE))


def _iter_cr_lines(stream: IO[bytes], offset: int, number: int,
                   max_line: int) -> Iterator[Line]:
    """:func:`iter_lines` for a CR file: the file read in blocks and split
    after every line ending (bare CR, CRLF or LF), so offsets stay exact.

    Blocks, not LF-terminated chunks: a CR file has no LF, so a chunk would
    be the whole file. A CR at the end of a block may be the first half of a
    CRLF, so it waits for the next block. Of a line longer than ``max_line``
    only :func:`_overlong`'s start is kept, like :func:`iter_lines`.
    """
    stream.seek(offset)
    buf, base = b"", offset  # buf[0] is byte ``base`` of the file
    at = scan = 0  # the current line starts at buf[at]; no line ends before buf[scan]
    start = offset  # where the current line starts in the file
    overlong: bytes | None = None  # the kept start of a line longer than max_line
    eof = False
    while True:
        found = _LINE_END.search(buf, scan)
        if found is not None and (eof or found.end() < len(buf) or found.group() != b"\r"):
            end = base + found.end()
            yield Line(number, start, end, overlong or _cut(buf[at:found.start()], max_line))
            number, start, overlong, at, scan = number + 1, end, None, found.end(), found.end()
            continue
        if eof:
            if start < base + len(buf):  # a last line without a line ending
                yield Line(number, start, base + len(buf), overlong or _cut(buf[at:], max_line))
            return
        held = found.start() if found is not None else len(buf)  # the line's text so far
        if overlong is None and held - at > max_line:
            overlong = _overlong(memoryview(buf)[at:], max_line)
        if overlong is not None:  # drop what was read of it (but a trailing CR)
            base, buf, at, scan = base + held, buf[held:], 0, 0
        else:
            base, buf, at, scan = base + at, buf[at:], 0, held - at
        block = stream.read(_READ_BLOCK)
        eof = not block
        buf += block


def _has_bare_cr(chunk: bytes) -> bool:
    """Does a line as read (LF-terminated, or the last or cut-short one) hold a CR not
    part of its final CRLF? One ``find`` (C speed): the first CR of a CRLF
    line is the one just before its LF."""
    cr = chunk.find(b"\r")
    return cr >= 0 and (cr != len(chunk) - 2 or chunk[-1] != 0x0A)


def count_data_lines(stream: IO[bytes], offset: int, layout: Layout) -> int:
    """Non-blank lines (see :func:`is_blank`) from ``offset`` to the end."""
    return count_data_lines_upto(stream, offset, layout, None)[0]


def count_data_lines_upto(stream: IO[bytes], offset: int, layout: Layout,
                      stop_above: int | None) -> tuple[int, bool]:
    """(non-blank lines from ``offset`` on, whether all were counted).

    Counted a block at a time with no Python work per line (a file of
    millions of short or blank lines costs what its bytes cost): the filler
    bytes of :func:`is_blank` are deleted, so a line is non-blank when
    something is left of it, and ``bytes.split()`` counts those. With
    ``stop_above`` it stops after the block where the count passes it, which
    is all a refusal needs.
    """
    delete, table = _count_tables(layout.delimiter, cr_line_endings(stream))
    stream.seek(offset)
    count, open_line = 0, False  # open_line: the last block ended inside a counted line
    while block := stream.read(_READ_BLOCK):
        kept = block.translate(table, delete)
        if not kept:
            continue
        count += len(kept.split()) - (open_line and kept[0] != 0x0A)
        open_line = kept[-1] != 0x0A
        if stop_above is not None and count > stop_above:
            return count, not stream.read(1)
    return count, True


@lru_cache(maxsize=16)
def _count_tables(delimiter: str, cr_lines: bool) -> tuple[bytes, bytes]:
    """(bytes to delete, translation) for :func:`count_data_lines_upto`: the
    filler goes, and every line ending becomes the one whitespace byte
    left (LF; a CR too in a CR file, where a CRLF then reads as an empty
    line, which is not counted); the other bytes ``split`` takes for
    whitespace (VT, FF) become ``x``, as for :func:`is_blank` they are text."""
    endings = b"\r\n" if cr_lines else b"\n"
    delete = bytes(b for b in _filler(delimiter) if b not in endings)
    table = bytearray(range(256))
    table[0x0B] = table[0x0C] = ord("x")
    if cr_lines:
        table[0x0D] = 0x0A
    return delete, bytes(table)


@lru_cache(maxsize=16)
def _filler(delimiter: str) -> bytes:
    """Cached: ``is_blank`` runs twice per line of every import."""
    return b' \t\r\n"' + delimiter.encode()


def is_blank(raw: bytes, layout: Layout) -> bool:
    """Blank lines, and lines of nothing but delimiters and quotes (what a
    spreadsheet writes for an empty row), are skipped without an error."""
    return not raw.strip(_filler(layout.delimiter))


MAX_RECORD_LINES = 20  # physical lines one quoted record may span


def iter_records(stream: IO[bytes], offset: int, number: int, layout: Layout,
                 max_line: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """:func:`iter_lines`, but for a ``multiline`` layout a record whose
    quoted field spans lines (Excel writes a line break in a cell that way)
    comes as one :class:`Line`: the record's first line number, its start,
    the last line's end, the lines joined by LF, and ``span``.

    Strict, so a stray quote never swallows the rows after it: lines are
    joined only when the first one ends inside a quoted field, the joined
    text is valid CSV within :data:`MAX_RECORD_LINES` lines and ``max_line``
    bytes, and (when the layout knows it) has exactly the header's number of
    fields. Otherwise the first line stays alone (reported as it always was)
    and the lines after it are read afresh.
    """
    lines = iter_lines(stream, offset, number, max_line)
    if not layout.multiline:
        yield from lines
        return
    delimiter = layout.delimiter
    pending: deque[Line] = deque()
    while True:
        line = pending.popleft() if pending else next(lines, None)
        if line is None:
            return
        if not _opens_quote(line.raw, delimiter):
            yield line
            continue
        taken = [line]
        joined: Line | None = None
        while len(taken) < MAX_RECORD_LINES:
            following = pending.popleft() if pending else next(lines, None)
            if following is None:
                break
            taken.append(following)
            raw = b"\n".join(t.raw for t in taken)
            if len(raw) > max_line:
                break
            if _closes(raw, delimiter, layout.record_width):
                joined = Line(line.number, line.start, following.end, raw, len(taken))
                break
        if joined is not None:
            yield joined
        else:
            yield line
            pending.extendleft(reversed(taken[1:]))


def _opens_quote(raw: bytes, delimiter: str) -> bool:
    """Does the line end inside a quoted field? (An odd number of quotes is
    the cheap pre-check; only then is it parsed.)"""
    if raw.count(b'"') % 2 == 0:
        return False
    try:
        list(csv.reader([raw.decode("latin-1")], delimiter=delimiter, strict=True))
    except csv.Error:
        return True
    return False


def _closes(raw: bytes, delimiter: str, width: int) -> bool:
    """Is ``raw`` one complete CSV record (of ``width`` fields when known)?"""
    if raw.count(b'"') % 2:
        return False
    try:
        rows = list(csv.reader([raw.decode("latin-1")], delimiter=delimiter, strict=True))
    except csv.Error:
        return False
    return len(rows) == 1 and (not width or len(rows[0]) == width)


def count_records_upto(stream: IO[bytes], offset: int, layout: Layout,
                       stop_above: int | None) -> tuple[int, bool]:
    """:func:`count_data_lines_upto` counting records (see :func:`iter_records`):
    a line at a time, so only for the layouts whose records may span lines,
    and only when the file has a quote at all (else every line is a record,
    and the block-wise count is exact)."""
    stream.seek(offset)
    if not any(b'"' in block for block in iter(partial(stream.read, _READ_BLOCK), b"")):
        return count_data_lines_upto(stream, offset, layout, stop_above)
    count = 0
    for line in iter_records(stream, offset, 1, layout):
        if not is_blank(line.raw, layout):
            count += 1
            if stop_above is not None and count > stop_above:
                return count, False
    return count, True
