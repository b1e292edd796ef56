"""``import_voters``: a voter file into voters + households, in checkpointed batches.

The checkpoint is ``{"offset": <byte offset of the next unread line>,
"row": <its row number>}``; a resumed job seeks straight there, so no row is
read twice and none is skipped.

Within one file the last row for a voter id wins, also across batches. A
single pass over the ids (cheap: split and look at one column) before the
first write of every run finds the rows a later row supersedes; those are
dropped from each batch before it is written (a helper may parse the first
batches while that pass runs). Writing them and then overwriting them would
also end with the last row, but a re-import of the same file would then
rewrite those voters twice instead of reporting them unchanged.

Every voter carries a ``record_hash`` over its full source row, the header,
its household key and :data:`PARSER_VERSION`; a row whose hash matches the
stored one is ``unchanged`` and not written at all (``updated_at`` stays).

Households are created per normalised residence key, with the number of
the batch's voters that live there; after that, a household's
``voter_count`` moves by the voters that join or leave it, in the same
transaction as the voter writes (so a resumed batch never counts twice).

A large file is parsed by a helper process a batch or two ahead of the
writes (:class:`_ParseAhead`): parsing and writing each take about half of
an import's CPU, and this way they overlap on two cores.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from operator import itemgetter
from typing import IO, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from cocoa import jsontext
from cocoa.db.copytext import copy_line, json_copy_text
from cocoa.db.tables import households, voters
from cocoa.domain import parcel_links
from cocoa.domain.voter_files import (
    CANONICAL_FIELDS,
    PARSER_VERSION,
    Header,
    Layout,
    Line,
    RowIssue,
    RowReader,
    count_data_lines,
    get_layout,
    inspect_file,
    is_blank,
    iter_lines,
    read_header_line,
    resolve_layout,
)
from cocoa.jobs.helpers import exit_with, helper_context
from cocoa.jobs.types import (
    Batch,
    Checkpoint,
    CreateContext,
    ItemError,
    JobFailed,
    JobValidationError,
    Params,
    RunContext,
    register,
    tune_garbage_collector,
)

log = logging.getLogger(__name__)

MODES = ("full", "incremental")
IN_CHUNK = 5000  # ids per IN (...) list: far below both backends' parameter limits
VOTER_COLUMNS = CANONICAL_FIELDS  # what RowReader.parse_row gives, in this order
_LENGTHS = {c.name: c.type.length if isinstance(c.type, sa.String) and c.type.length
            else 1 << 30 for c in voters.c}
_HH_LENGTHS = {c.name: c.type.length for c in households.c
               if isinstance(c.type, sa.String) and c.type.length}
# (position, size) of the sized text columns among VOTER_COLUMNS: the only
# values that can need truncating, so the only ones a row checks.
_VOTER_LIMITS = tuple(sorted(((i, _LENGTHS[name]) for i, name in enumerate(VOTER_COLUMNS)
                             if _LENGTHS[name] < 1 << 30), key=lambda limit: limit[1]))
_pick_sized = itemgetter(*(i for i, _ in _VOTER_LIMITS))  # all str or None
_DATE_SLOTS = tuple(i for i, c in enumerate(VOTER_COLUMNS)
                    if isinstance(voters.c[c].type, sa.Date))
COUNTY, PRECINCT = VOTER_COLUMNS.index("county"), VOTER_COLUMNS.index("precinct")
_AHEAD = "import_voters.ahead"  # ctx.cache key of the run's _ParseAhead


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- run state


@dataclass(slots=True)
class _RunState:
    """What every batch of one run needs; rebuilt on resume (cheap)."""

    layout: Layout
    parser: _Parser
    data_offset: int
    first_row: int
    superseded: set[int] = field(default_factory=set)


def _run_state(ctx: RunContext, checkpoint: Checkpoint | None = None) -> _RunState:
    """The run's state, built by its first batch (``checkpoint`` is where that
    batch starts)."""
    state = ctx.cache.get("import_voters")
    if isinstance(state, _RunState):
        return state
    stream = ctx.open_upload()
    try:
        header_line = read_header_line(stream)
        if header_line is None:
            raise JobFailed("The uploaded file is empty.")
        detection = resolve_layout(header_line, str(ctx.params["format"]))
        parser = _Parser(detection.layout, detection.header, ctx.job_id,
                         copy_text=ctx.engine.dialect.name == "postgresql")
        state = _RunState(detection.layout, parser, header_line.end, header_line.number + 1)
        _start_parse_ahead(ctx, state, checkpoint)
        state.superseded = _superseded_rows(stream, state)
    except JobValidationError as exc:  # the stored file no longer matches: job-level
        raise JobFailed(exc.message) from exc
    finally:
        stream.close()
    ctx.cache["import_voters"] = state
    return state


def _start_parse_ahead(ctx: RunContext, state: _RunState, checkpoint: Checkpoint | None) -> None:
    """Helper processes for the run, already parsing its first batches (that
    needs no repeated ids) while the worker looks for repeated ids. Helpers
    that cannot start cost speed, not the import: the worker parses. None
    for a file with too few rows left to be worth them."""
    offset, row = _position(state, checkpoint)
    if _rows_left(ctx, state, row) < ctx.settings.parse_ahead_min_rows:
        return
    try:
        ahead = _ParseAhead(state.parser, ctx.settings.parse_helpers)
    except Exception as exc:  # noqa: BLE001 - any failure to start leaves the parse here
        log.warning("voter import helper processes could not start (%s: %s); "
                    "parsing in the worker", type(exc).__name__, exc)
        return
    ctx.cache[_AHEAD] = ahead
    ctx.closers.append(ahead.close)
    ahead.follow(ctx, state, offset, row)


def _position(state: _RunState, checkpoint: Checkpoint | None) -> tuple[int, int]:
    """(byte offset, row number) where the batch at ``checkpoint`` starts."""
    if checkpoint:
        return int(checkpoint["offset"]), int(checkpoint["row"])
    return state.data_offset, state.first_row


def _superseded_rows(stream: IO[bytes], state: _RunState) -> set[int]:
    """Rows whose voter id appears again later in the file (last row wins).

    Mostly only the id bytes are looked at (see ``RowReader.voter_id``);
    layouts without an id column need the full row for their key (those are
    hand-made, small files).
    """
    last: dict[str, int] = {}
    superseded: set[int] = set()
    reader = state.parser.reader
    for line in iter_lines(stream, state.data_offset, state.first_row):
        if is_blank(line.raw, state.layout):
            continue
        key = reader.voter_id(line)
        if key is None:
            continue
        previous = last.get(key)
        if previous is not None:
            superseded.add(previous)
        last[key] = line.number
    return superseded


# --------------------------------------------------------------------------- reading

# A household as the batch's last row living there describes it: the
# HOUSEHOLD_COLUMNS from ``street_line`` to ``precinct``. Plain values on
# both backends: only the households missing from the database are written,
# and the write formats just those (fewer than half of a first import's).
_Home = tuple[str | None, ...]


@dataclass(slots=True)
class _Lines:
    """One batch's lines as cut from the file, and where the next batch starts.

    Cutting is cheap (find line ends, skip blank lines) and stays with the
    worker, which holds the file; parsing them may happen elsewhere (see
    :class:`_ParseAhead`), so this is all the parse gets.
    """

    numbers: list[int]
    raws: list[bytes]
    offset: int
    row: int
    done: bool  # no non-blank line after these


def _cut_batches(stream: IO[bytes], offset: int, row: int, layout: Layout,
                 size: int) -> Iterator[_Lines]:
    """Successive batches of ``size`` non-blank lines from ``offset`` on.

    A batch ends just before the next non-blank line, so blank lines between
    two batches belong to the first and a checkpoint never points at one; the
    last batch (``done``) ends at the end of the file.
    """
    numbers: list[int] = []
    raws: list[bytes] = []
    for line in iter_lines(stream, offset, row):
        if not is_blank(line.raw, layout):
            if len(numbers) >= size:
                yield _Lines(numbers, raws, offset, row, False)
                numbers, raws = [], []
            numbers.append(line.number)
            raws.append(line.raw)
        offset, row = line.end, line.number + 1
    yield _Lines(numbers, raws, offset, row, True)


@dataclass(slots=True)
class _Voters:
    """A batch's voters to write, as the parser leaves them, column by column.

    Columns rather than a tuple per voter because a batch parsed in a helper
    process is pickled, sent and unpickled, and that costs per object: this
    way it is a few lists and, for PostgreSQL, one bytes object.

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

    def only(self, keep: list[int]) -> _Voters:
        """These voters only (by position), in this order."""
        def pick(column: list[Any]) -> list[Any]:
            return [column[i] for i in keep] if column else []

        chosen = _Voters(pick(self.ids), pick(self.digests), pick(self.keys), pick(self.rows),
                         pick(self.values))
        if self.ends:
            view = memoryview(self.text)
            lines = [self.line(i, view) for i in keep]
            chosen.text, chosen.ends = b"".join(lines), list(accumulate(map(len, lines)))
        return chosen


@dataclass(slots=True)
class _Read:
    """One batch worth of rows, parsed, before any database work."""

    voters: _Voters = field(default_factory=_Voters)
    homes: dict[str, _Home] = field(default_factory=dict)  # by household key
    errors: list[ItemError] = field(default_factory=list)
    processed: int = 0
    failed: int = 0
    warnings: int = 0
    superseded: int = 0
    offset: int = 0
    row: int = 0
    done: bool = True


class _Parser:
    """Turns a batch of lines into voters to write and item errors.

    Everything a row needs that does not depend on the database's state
    happens here (record JSON, hash, the row as the write sends it), so that
    it can run in a helper process: built from plain, picklable values.
    What crosses between processes is kept to a few objects per row (about
    two thirds of the pickling cost was the objects, not the bytes), and for
    PostgreSQL (``copy_text``) the row is finished COPY text, so the worker
    does not format it either.
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

    def parse(self, lines: _Lines) -> _Read:
        """One flat loop on purpose: per row it is the parse, the record, the
        hash and an append (no record object, no per-row dict)."""
        out = _Read(offset=lines.offset, row=lines.row, done=lines.done)
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
                errors.append(_item_error(item))
                continue
            external_id, values, source_values, home, warnings = item
            if warnings:
                warned += len(warnings)
                errors.extend(map(_item_error, warnings))
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


class _ParseAhead:
    """Parses the next batches in helper processes while the worker writes.

    Parsing and the writes (SQLite here, PostgreSQL in its server) each
    take a large part of an import's CPU; in one process they take turns,
    here they overlap on two cores (docs/benchmarks.md has the figures).
    The worker still cuts the lines (it holds the file, which lives in the
    database) and does every database write, so a helper cannot change what
    is stored: :meth:`take` hands back exactly what :meth:`_Parser.parse`
    gives in-process, and None whenever it cannot (a batch from another
    checkpoint, a helper that died), which the caller parses itself.
    """

    def __init__(self, parser: _Parser, helpers: int) -> None:
        """Starts the helper processes now: forked from the worker's helper
        server (:mod:`cocoa.jobs.helpers`), they are ready in milliseconds
        and parse the first batches while the worker finds repeated ids."""
        # Batches parsed ahead: one more than the helpers keeps them all busy
        # (results are taken in file order), with little memory.
        self._depth = helpers + 1
        self._stream: IO[bytes] | None = None
        self._batches: Iterator[_Lines] = iter(())
        self._queue: deque[tuple[tuple[int, int], _Helper]] = deque()
        self._next = (0, 0)
        self._turn = 0  # the helper that gets the next batch
        self.failed = False
        self.taken = 0  # batches handed over (tests check the helper was used)
        self._helpers: list[_Helper] = []
        try:
            for _ in range(helpers):
                self._helpers.append(_Helper(parser))
        except BaseException:
            self.close()  # the helpers started so far
            raise

    def follow(self, ctx: RunContext, state: _RunState, offset: int, row: int) -> None:
        """Parse the batches from ``offset`` on (anything queued is dropped)."""
        self._close_stream()
        for _, helper in self._queue:
            helper.unwanted += 1
        self._queue.clear()
        self._stream = ctx.open_upload()
        self._batches = _cut_batches(self._stream, offset, row, state.layout, ctx.batch_size)
        self._next = (offset, row)
        self._fill()

    def _fill(self) -> None:
        while len(self._queue) < self._depth and self._stream is not None:
            lines = next(self._batches)
            helper = self._helpers[self._turn % len(self._helpers)]
            self._turn += 1
            self._queue.append((self._next, helper))
            self._next = (lines.offset, lines.row)
            if lines.done:
                self._close_stream()
            helper.send(lines)

    def take(self, offset: int, row: int) -> _Read | None:
        """The parsed batch that starts at ``offset``, or None."""
        if self.failed or not self._queue or self._queue[0][0] != (offset, row):
            return None
        _, helper = self._queue.popleft()
        try:
            read = helper.receive()
        except (OSError, EOFError, _HelperFailed) as exc:
            log.warning("voter import helper process failed (%s: %s); parsing in the worker",
                        type(exc).__name__, exc)
            self.failed = True
            self.close()
            return None
        self.taken += 1
        self._fill()
        return read

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self._close_stream()
        self._queue.clear()
        for helper in self._helpers:
            helper.close()


class _HelperFailed(Exception):
    """A helper could not parse a batch (a bug: the parser reports bad rows
    as item errors); the message is the helper's exception."""


class _Helper:
    """One helper process and its two one-way pipes.

    Only the helper holds the far end of each pipe, so a helper that dies,
    even halfway through sending a batch, is an end of file or a broken
    pipe here, never a wait. (``concurrent.futures.ProcessPoolExecutor``
    keeps both ends of its result pipe in the parent: a helper killed while
    sending left the worker waiting for the rest of the message forever.)
    Like the executor, two threads here move the megabytes, so that the
    worker's writes never wait for a pipe and the helper has one thread
    only: batches go out as soon as the helper reads them, results are read
    as soon as it sends them.
    """

    def __init__(self, parser: _Parser) -> None:
        context = helper_context()
        calls_in, self._calls = context.Pipe(duplex=False)
        self._results, results_out = context.Pipe(duplex=False)
        self.process = context.Process(target=_run_helper, name="voter-import-helper",
                                       args=(parser, os.getpid(), calls_in, results_out),
                                       daemon=True)
        try:
            self.process.start()
        except BaseException:
            self._calls.close()
            self._results.close()
            raise
        finally:
            calls_in.close()
            results_out.close()
        self.unwanted = 0  # results still to come for batches nobody wants now
        self._outgoing: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._received: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for target in (self._send_batches, self._read_results):
            threading.Thread(target=target, name="voter-import-helper-io", daemon=True).start()

    def _send_batches(self) -> None:
        """Until :meth:`close` (or the helper is gone)."""
        try:
            while (data := self._outgoing.get()) is not None:
                self._calls.send_bytes(data)
        except OSError:  # the helper is gone: _read_results sees it too
            pass
        finally:
            self._calls.close()

    def _read_results(self) -> None:
        """Until the helper's end of the pipe closes (it exits, or dies)."""
        try:
            while True:
                self._received.put(self._results.recv())
        except (EOFError, OSError) as exc:
            self._received.put(exc)
        finally:
            self._results.close()

    def send(self, lines: _Lines) -> None:
        self._outgoing.put(bytes(ForkingPickler.dumps(lines)))

    def receive(self) -> _Read:
        while True:
            result = self._received.get()
            if isinstance(result, BaseException):
                self._received.put(result)  # and for any later call
                raise result
            if self.unwanted:
                self.unwanted -= 1
                continue
            if isinstance(result, str):
                raise _HelperFailed(result)
            return result

    def close(self) -> None:
        """The helper exits when its input ends (or at once, with its worker
        gone); the results thread then sees the end of its pipe."""
        self._outgoing.put(None)


def _rebuild_parser(layout: Layout, header: Header, job_id: str, copy_text: bool) -> _Parser:
    return _Parser(layout, header, job_id, copy_text=copy_text)


def _run_helper(parser: _Parser, worker_pid: int, calls: Connection, results: Connection,
                ) -> None:
    """A helper process: parse each batch that comes in, send it back, until
    the worker closes its end. Ctrl-C is left to the worker, and the helper
    exits at once when the worker is gone (a SIGKILLed worker cannot shut it
    down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_garbage_collector()
    exit_with(worker_pid)
    try:
        while True:
            lines: _Lines = calls.recv()
            try:
                result: _Read | str = parser.parse(lines)
            except Exception as exc:  # noqa: BLE001 - reported: the worker parses instead
                result = f"{type(exc).__name__}: {exc}"
            results.send(result)
    except (EOFError, OSError):  # the worker closed its end, or stopped reading
        pass


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


def _item_error(issue: RowIssue) -> ItemError:
    return ItemError(item_ref=f"row {issue.row}", code=issue.code, message=issue.message,
                     item_index=issue.row, severity="error" if issue.fatal else "warning")


class _DateText(dict[Any, Any]):
    """date -> the ISO text both backends store (the SQLite Date type's own
    bind processor; PostgreSQL reads the same text), memoised: a file has a
    few thousand distinct dates."""

    def __init__(self) -> None:
        super().__init__({None: None})
        dialect = sqlite.dialect()
        self._process = voters.c.birth_date.type.dialect_impl(dialect).bind_processor(dialect)

    def __missing__(self, value: Any) -> Any:
        text = self[value] = self._process(value) if self._process else value
        return text


# --------------------------------------------------------------------------- writing

WRITE_COLUMNS = (*VOTER_COLUMNS, "source", "external_id", "record", "record_hash",
                 "import_job_id", "household_id", "created_at", "updated_at")
# A voter already stored takes every written column but its key and created_at.
_VOTER_ON_CONFLICT = "ON CONFLICT (source, external_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in WRITE_COLUMNS
    if c not in ("source", "external_id", "created_at"))
# A household created after the parcels it is on is linked as it is inserted
# (cocoa.domain.parcel_links: by address, else by its building).
_LINK_COLUMNS = ("parcel_id", "parcel_link_method")
HOUSEHOLD_COLUMNS = ("address_key", "street_line", "unit", "city", "state", "zip_code",
                     "county", "precinct", *_LINK_COLUMNS, "voter_count", "created_at",
                     "updated_at")
_HH_LIMITS = tuple((i, _HH_LENGTHS[c]) for i, c in enumerate(HOUSEHOLD_COLUMNS)
                   if c in _HH_LENGTHS and c not in _LINK_COLUMNS)
_NO_LINK, _NO_LINK_TEXT = (None, None), "\\N\t\\N"  # as values; as COPY text


@dataclass(frozen=True, slots=True)
class _Sql:
    """The statements of one backend, written once (no per-batch compiling).

    Id and key lists travel as one JSON parameter: SQLite reads it with
    ``json_each``, PostgreSQL with ``json_array_elements_text`` /
    ``json_each_text`` (adapting a Python list to a PostgreSQL array costs
    ~1.5 µs per element client-side).
    """

    existing: str
    household_ids: str
    insert_households: str
    insert_voters: str
    upsert_voters: str
    shift_counts: str


def _marks(n: int, mark: str) -> str:
    return ", ".join([mark] * n)


def _sql(postgres: bool) -> _Sql:
    mark = "%s" if postgres else "?"
    insert_households = (f"INSERT INTO households ({', '.join(HOUSEHOLD_COLUMNS)}) VALUES "
                         f"({_marks(len(HOUSEHOLD_COLUMNS), mark)}) "
                         "ON CONFLICT (address_key) DO NOTHING")
    insert_voters = (f"INSERT INTO voters ({', '.join(WRITE_COLUMNS)}) VALUES "
                     f"({_marks(len(WRITE_COLUMNS), mark)})")
    upsert_voters = f"{insert_voters} {_VOTER_ON_CONFLICT}"
    if postgres:
        # One index probe per id or key, whatever the statistics say: while a
        # first import fills the tables they are stale, and ``column =
        # ANY(...)`` was then planned as a scan of every row of the source
        # with a linear search of the list for each (quadratic).
        return _Sql(
            existing=("SELECT v.external_id, v.record_hash, v.household_id "
                      "FROM json_array_elements_text(%(ids)s::json) AS k(id), LATERAL "
                      "(SELECT external_id, record_hash, household_id FROM voters "
                      "WHERE source = %(source)s AND external_id = k.id LIMIT 1) AS v"),
            household_ids=("SELECT h.address_key, h.id "
                           "FROM json_array_elements_text(%(keys)s::json) AS k(key), LATERAL "
                           "(SELECT address_key, id FROM households "
                           "WHERE address_key = k.key LIMIT 1) AS h"),
            insert_households=insert_households, insert_voters=insert_voters,
            upsert_voters=upsert_voters,
            shift_counts=("UPDATE households SET voter_count = voter_count + d.delta::int, "
                          "updated_at = %(now)s "
                          "FROM json_each_text(%(deltas)s::json) AS d(id, delta) "
                          "WHERE households.id = d.id::int"),
        )
    return _Sql(
        existing=("SELECT external_id, record_hash, household_id FROM voters "
                  "WHERE source = :source AND external_id IN (SELECT value FROM json_each(:ids))"),
        household_ids=("SELECT address_key, id FROM households "
                       "WHERE address_key IN (SELECT value FROM json_each(:keys))"),
        insert_households=insert_households, insert_voters=insert_voters,
        upsert_voters=upsert_voters,
        shift_counts=("UPDATE households SET voter_count = voter_count + d.value, "
                      "updated_at = :now FROM json_each(:deltas) AS d "
                      "WHERE households.id = CAST(d.key AS INTEGER)"),
    )


_SQLITE, _POSTGRES = _sql(False), _sql(True)
_RESERVE_HOUSEHOLD_IDS = ("SELECT nextval(pg_get_serial_sequence('households', 'id')) "
                          "FROM generate_series(1, %s)")


def _json_text(value: Any) -> str:
    """A list or dict as the one JSON text parameter the statements read."""
    return jsontext.dumps(value).decode()


@dataclass(slots=True)
class _Writer:
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
    voters: _Voters
    homes: dict[str, _Home]

    def __call__(self, conn: sa.Connection) -> dict[str, int]:
        postgres = conn.dialect.name == "postgresql"
        sql = _POSTGRES if postgres else _SQLITE
        counts = {"voters_created": 0, "voters_updated": 0, "voters_unchanged": 0,
                  "voters_skipped": 0, "households_created": 0,
                  "households_linked_address": 0, "households_linked_building": 0}
        new, changed, left = self._classify(conn, sql, counts)
        if not new and not changed:
            return counts
        now = utcnow()
        stamp = now if postgres else _bind(conn, households.c.created_at, now)
        ids, created = self._households(conn, sql, new + changed, stamp, postgres, counts)
        counts["households_created"] = len(created)
        if postgres:
            tail = _stamps_text(now)
            _copy_lines(conn, "voters", WRITE_COLUMNS, self._lines(new, ids, tail))
            if changed:
                _copy_upsert(conn, "voters", WRITE_COLUMNS, self._lines(changed, ids, tail),
                             _VOTER_ON_CONFLICT)
        else:  # under SQLite's write lock the classification is exact: new rows are new
            if new:
                conn.exec_driver_sql(sql.insert_voters, self._rows(new, ids, stamp))
            if changed:
                conn.exec_driver_sql(sql.upsert_voters, self._rows(changed, ids, stamp))
        deltas = _count_deltas(self.voters.keys, new, changed, left, ids, created)
        if deltas:
            by_id = {str(household): delta for household, delta in deltas.items()}  # JSON keys
            conn.exec_driver_sql(sql.shift_counts, {"now": stamp, "deltas": _json_text(by_id)})
        return counts

    def _classify(self, conn: sa.Connection, sql: _Sql, counts: dict[str, int],
                  ) -> tuple[list[int], list[int], list[int | None]]:
        """New / changed voters (by position) and the unchanged / skipped
        counts, against what is stored now; also the household each changed
        voter lived in until now."""
        existing: dict[str, tuple[str, int | None]] = {}
        for chunk in _chunks(self.voters.ids):
            result = conn.exec_driver_sql(sql.existing,
                                          {"source": self.source, "ids": _json_text(chunk)})
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

    def _households(self, conn: sa.Connection, sql: _Sql, pending: list[int], stamp: Any,
                    postgres: bool, counts: dict[str, int]) -> tuple[dict[str, int], set[int]]:
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
        ids = self._household_ids(conn, sql, list(joining))
        missing = [key for key in joining if key not in ids]
        if not missing:
            return ids, set()
        links = parcel_links.links_by_key(conn, missing)
        for _pid, method in links.values():
            counts[f"households_linked_{method}"] += 1
        if postgres:  # ids from the column's own sequence, in insert order: no re-read
            result = conn.exec_driver_sql(_RESERVE_HOUSEHOLD_IDS, (len(missing),))
            new_ids = sorted(row[0] for row in result)
            tail = _stamps_text(stamp)
            linked = {key: f"{pid}\t{method}" for key, (pid, method) in links.items()}
            _copy_lines(conn, "households", ("id", *HOUSEHOLD_COLUMNS),
                        (f"{i}\t{copy_line(_household_values(key, self.homes[key]))}\t"
                         f"{linked.get(key, _NO_LINK_TEXT)}\t{joining[key]}".encode() + tail
                         for i, key in zip(new_ids, missing, strict=True)))
            created = dict(zip(missing, new_ids, strict=True))
        else:
            conn.exec_driver_sql(sql.insert_households, [
                (*_household_values(key, self.homes[key]), *links.get(key, _NO_LINK),
                 joining[key], stamp, stamp)
                for key in missing])
            created = self._household_ids(conn, sql, missing)
        ids.update(created)
        return ids, set(created.values())

    @staticmethod
    def _household_ids(conn: sa.Connection, sql: _Sql, keys: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(keys):
            found.update((row[0], row[1]) for row in
                         conn.exec_driver_sql(sql.household_ids, {"keys": _json_text(chunk)}))
        return found

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


def _count_deltas(keys: list[str | None], new: list[int], changed: list[int],
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


def _bind(conn: sa.Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` as the column type's bind processor hands it to the driver."""
    dialect = conn.dialect
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process else value


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), IN_CHUNK):
        yield items[i:i + IN_CHUNK]


def _household_values(key: str, home: tuple[str | None, ...]) -> list[str | None]:
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


def _copy_lines(conn: sa.Connection, table: str, columns: tuple[str, ...],
                pieces: Iterable[bytes | memoryview]) -> None:
    """PostgreSQL ``COPY`` of COPY text given in pieces (lines or parts of
    lines), joined and sent about 1,500 at a time so that the server parses
    while the rest are joined."""
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        chunk: list[bytes | memoryview] = []
        for piece in pieces:
            chunk.append(piece)
            if len(chunk) == 1500:
                copy.write(b"".join(chunk))
                chunk.clear()
        if chunk:
            copy.write(b"".join(chunk))


def _copy_upsert(conn: sa.Connection, table: str, columns: tuple[str, ...],
                 lines: Iterable[bytes | memoryview], on_conflict: str) -> None:
    """``COPY`` into a temporary table, then one INSERT ... SELECT ... ON CONFLICT."""
    stage, cols = f"_stage_{table}", ", ".join(columns)
    conn.exec_driver_sql(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
                         f"SELECT {cols} FROM {table} WITH NO DATA")
    _copy_lines(conn, stage, columns, lines)
    conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} {on_conflict}")
    conn.exec_driver_sql(f"DROP TABLE {stage}")


# --------------------------------------------------------------------------- job type


class ImportVoters:
    """Import a voter file (see module docstring for the guarantees)."""

    name: ClassVar[str] = "import_voters"
    needs_upload: ClassVar[bool] = True
    hidden: ClassVar[bool] = False
    batch_size_setting: ClassVar[str] = "voter_batch_size"
    uses_helpers: ClassVar[bool] = True  # _ParseAhead

    def validate(self, ctx: CreateContext) -> Params:
        requested = str(ctx.params.get("format") or "auto")
        mode = str(ctx.params.get("mode") or "full")
        if mode not in MODES:
            raise JobValidationError(
                f"Unknown import mode {mode!r}; valid modes: {', '.join(MODES)}",
                code="unknown_mode", status=422, details={"mode": mode, "valid": list(MODES)})
        if requested != "auto":
            get_layout(requested)
        if ctx.upload is None:
            raise JobValidationError("A voter file is required.", code="file_required")
        found = inspect_file(ctx.upload, requested, ctx.settings.max_items_per_job)
        return {"format": found.layout.name, "requested_format": requested, "mode": mode,
                "rows": found.rows, "detection": found.reason}

    def plan(self, ctx: RunContext) -> int:
        rows = ctx.params.get("rows")
        if isinstance(rows, int):
            return rows
        state = _run_state(ctx)
        stream = ctx.open_upload()
        try:
            return count_data_lines(stream, state.data_offset, state.layout)
        finally:
            stream.close()

    def run_batch(self, ctx: RunContext, checkpoint: Checkpoint | None) -> Batch:
        state = _run_state(ctx, checkpoint)
        read = _without_superseded(_parsed_batch(ctx, state, *_position(state, checkpoint)),
                                   state.superseded)
        writer = _Writer(state.layout.name, str(ctx.params.get("mode", "full")), read.voters,
                         read.homes)
        return Batch(
            checkpoint={"offset": read.offset, "row": read.row},
            processed=read.processed, succeeded=read.processed - read.failed,
            failed=read.failed, errors=read.errors, done=read.done,
            write=writer if read.voters else None,
            counts={"rows_read": read.processed, "item_errors": read.failed,
                    "item_warnings": read.warnings, "rows_superseded": read.superseded},
            result=_result_fields(ctx.params, state.layout),
        )


def _parsed_batch(ctx: RunContext, state: _RunState, offset: int, row: int) -> _Read:
    """The batch at ``offset``: from the helper process when it has it,
    otherwise cut and parsed here, and then the helper (if the run has one,
    see :func:`_run_state`, and it has not failed) is pointed at the batches
    after this one when enough of the file is left."""
    ahead = ctx.cache.get(_AHEAD)
    read = ahead.take(offset, row) if isinstance(ahead, _ParseAhead) else None
    if read is None:
        stream = ctx.open_upload()
        try:
            lines = next(_cut_batches(stream, offset, row, state.layout, ctx.batch_size))
        finally:
            stream.close()
        if (isinstance(ahead, _ParseAhead) and not ahead.failed and not lines.done
                and _rows_left(ctx, state, row) >= ctx.settings.parse_ahead_min_rows):
            ahead.follow(ctx, state, lines.offset, lines.row)
        read = state.parser.parse(lines)
    if read.done and isinstance(ahead, _ParseAhead):
        ahead.close()
    return read


def _without_superseded(read: _Read, superseded: set[int]) -> _Read:
    """The batch without the voters a later row of the file replaces."""
    rows = read.voters.rows
    if superseded.isdisjoint(rows):
        return read
    keep = [i for i, number in enumerate(rows) if number not in superseded]
    read.superseded = len(rows) - len(keep)
    read.voters = read.voters.only(keep)
    return read


def _rows_left(ctx: RunContext, state: _RunState, row: int) -> int:
    """About how many rows are left from ``row`` (blank lines count as rows)."""
    rows = ctx.params.get("rows")
    return rows - (row - state.first_row) if isinstance(rows, int) else 0


def _result_fields(params: Params, layout: Layout) -> dict[str, Any]:
    fields: dict[str, Any] = {"layout": layout.name,
                              "requested_format": params.get("requested_format", layout.name)}
    if params.get("requested_format") == "auto":
        fields["detected"] = params.get("detection")
    return fields


register(ImportVoters())
