"""``import_voters``: a voter file into voters + households, in checkpointed batches.

The checkpoint is ``{"offset": <byte offset of the next unread line>,
"row": <its row number>}``; a resumed job seeks straight there, so no row is
read twice and none is skipped.

Within one file the last row for a voter id wins, also across batches. A
single pass over the ids (cheap: split and look at one column) before the
first batch of every run finds the rows a later row supersedes; those are
skipped. Writing them and then overwriting them would also end with the last
row, but a re-import of the same file would then rewrite those voters twice
instead of reporting them unchanged.

Every voter carries a ``record_hash`` over its full source row, the header,
its household key and :data:`PARSER_VERSION`; a row whose hash matches the
stored one is ``unchanged`` and not written at all (``updated_at`` stays).

Households are created per normalised residence key; when voters move, the
``voter_count`` of every household they left or joined is recomputed from the
voters table inside the batch transaction, so it is right by construction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, ClassVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cocoa.db.tables import households, voters
from cocoa.domain.voter_files import (
    PARSER_VERSION,
    Layout,
    Residence,
    RowIssue,
    RowReader,
    VoterRecord,
    count_data_lines,
    get_layout,
    inspect_file,
    is_blank,
    iter_lines,
    read_header_line,
    resolve_layout,
)
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
)

MODES = ("full", "incremental")
IN_CHUNK = 5000  # ids per IN (...) list: far below both backends' parameter limits
VOTER_COLUMNS = (
    "first_name", "middle_name", "last_name", "name_suffix", "birth_date", "birth_year",
    "registration_date", "party", "status", "precinct", "county", "phone", "email",
    "res_street", "res_city", "res_state", "res_zip", "mail_address",
)
_LENGTHS = {c.name: c.type.length if isinstance(c.type, sa.String) and c.type.length
            else 1 << 30 for c in voters.c}
_HH_LENGTHS = {c.name: c.type.length for c in households.c
               if isinstance(c.type, sa.String) and c.type.length}
# (position, size) of the sized text columns among VOTER_COLUMNS: the only
# values that can need truncating, so the only ones a row checks.
_VOTER_LIMITS = tuple((i, _LENGTHS[name]) for i, name in enumerate(VOTER_COLUMNS)
                      if _LENGTHS[name] < 1 << 30)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- run state


@dataclass(slots=True)
class _RunState:
    """What every batch of one run needs; rebuilt on resume (cheap)."""

    layout: Layout
    reader: RowReader
    data_offset: int
    first_row: int
    header_digest: str
    superseded: set[int] = field(default_factory=set)

    @property
    def hash_prefix(self) -> str:
        """The part of every record hash's material that is the same for the
        whole file (see :func:`_voter_row`)."""
        return "\x1f".join((PARSER_VERSION, self.layout.name, self.header_digest))


def _run_state(ctx: RunContext) -> _RunState:
    state = ctx.cache.get("import_voters")
    if isinstance(state, _RunState):
        return state
    stream = ctx.open_upload()
    try:
        header_line = read_header_line(stream)
        if header_line is None:
            raise JobFailed("The uploaded file is empty.")
        detection = resolve_layout(header_line, str(ctx.params["format"]))
        reader = RowReader(detection.layout, detection.header)
        digest = hashlib.sha256("\x1f".join(detection.header.names).encode()).hexdigest()
        state = _RunState(detection.layout, reader, header_line.end, header_line.number + 1,
                          digest)
        state.superseded = _superseded_rows(stream, state)
    except JobValidationError as exc:  # the stored file no longer matches: job-level
        raise JobFailed(exc.message) from exc
    finally:
        stream.close()
    ctx.cache["import_voters"] = state
    return state


def _superseded_rows(stream: IO[bytes], state: _RunState) -> set[int]:
    """Rows whose voter id appears again later in the file (last row wins).

    Mostly only the id bytes are looked at (see ``RowReader.voter_id``);
    layouts without an id column need the full row for their key (those are
    hand-made, small files).
    """
    last: dict[str, int] = {}
    superseded: set[int] = set()
    reader = state.reader
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


@dataclass(slots=True)
class _Read:
    """One batch worth of rows, before any database work."""

    records: list[VoterRecord] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    processed: int = 0
    failed: int = 0
    warnings: int = 0
    superseded: int = 0
    offset: int = 0
    row: int = 0
    done: bool = True


def _read_batch(ctx: RunContext, state: _RunState, offset: int, row: int) -> _Read:
    out = _Read(offset=offset, row=row)
    stream = ctx.open_upload()
    try:
        for line in iter_lines(stream, offset, row):
            if is_blank(line.raw, state.layout):
                out.offset, out.row = line.end, line.number + 1
                continue
            if out.processed >= ctx.batch_size:
                out.done = False
                break
            _take(out, state, state.reader.parse(line))
            out.offset, out.row = line.end, line.number + 1
    finally:
        stream.close()
    return out


def _take(out: _Read, state: _RunState, item: VoterRecord | RowIssue) -> None:
    out.processed += 1
    if isinstance(item, RowIssue):
        out.failed += 1
        out.errors.append(_item_error(item))
        return
    for warning in item.warnings:
        out.warnings += 1
        out.errors.append(_item_error(warning))
    if item.row in state.superseded:
        out.superseded += 1
        return
    out.records.append(item)


def _item_error(issue: RowIssue) -> ItemError:
    return ItemError(item_ref=f"row {issue.row}", code=issue.code, message=issue.message,
                     item_index=issue.row, severity="error" if issue.fatal else "warning")


# --------------------------------------------------------------------------- rows


def _voter_row(record: VoterRecord, source: str, hash_prefix: str, job_id: str) -> list[Any]:
    """The voters-table values for one record, in :data:`WRITE_COLUMNS` order
    (text truncated to the column sizes; the full text is always in
    ``record``). The hash is over the raw values, the header and the household
    key (``hash_prefix`` is :attr:`_RunState.hash_prefix`); the record is
    serialised only if the row is written, so until then the ``record`` slot
    holds the raw values. The household id and timestamps are filled in at
    write time."""
    row: list[Any] = list(map(record.fields.get, VOTER_COLUMNS))
    for i, limit in _VOTER_LIMITS:
        value = row[i]
        if isinstance(value, str) and len(value) > limit:
            row[i] = value[:limit]
    home = record.household
    material = "\x1f".join((hash_prefix, home.key if home else "", *record.values))
    digest = hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()
    row += [source, record.external_id, record.values, digest, job_id, None, None, None]
    return row


# --------------------------------------------------------------------------- writing

WRITE_COLUMNS = (*VOTER_COLUMNS, "source", "external_id", "record", "record_hash",
                 "import_job_id", "household_id", "created_at", "updated_at")
_AT = {name: i for i, name in enumerate(WRITE_COLUMNS)}
EXTERNAL_ID, RECORD, RECORD_HASH = _AT["external_id"], _AT["record"], _AT["record_hash"]
HOUSEHOLD_ID = _AT["household_id"]
HOUSEHOLD_COLUMNS = ("address_key", "street_line", "unit", "city", "state", "zip_code",
                     "county", "precinct", "voter_count", "created_at", "updated_at")
_HH_LIMITS = tuple((i, _HH_LENGTHS[c]) for i, c in enumerate(HOUSEHOLD_COLUMNS)
                   if c in _HH_LENGTHS)
COUNTY, PRECINCT = _AT["county"], _AT["precinct"]


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), IN_CHUNK):
        yield items[i:i + IN_CHUNK]


def bulk_upsert(conn: sa.Connection, table: sa.Table, columns: tuple[str, ...],
                rows: list[tuple[Any, ...]], conflict: tuple[str, ...],
                update: tuple[str, ...]) -> None:
    """INSERT ... ON CONFLICT (``conflict``) DO UPDATE ``update`` (or DO NOTHING).

    Bulk on purpose, below SQLAlchemy's per-row parameter handling (which
    alone costs more than the whole import budget): PostgreSQL gets the rows
    through COPY into a temporary table and one INSERT ... SELECT; SQLite one
    ``executemany`` of a prepared statement. Values go through the column
    types' own bind processors, so they are stored exactly as SQLAlchemy
    would store them, except JSON columns: their values arrive serialised.
    """
    if not rows:
        return
    cols = ", ".join(columns)
    action = ("DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update)
              if update else "DO NOTHING")
    on_conflict = f"ON CONFLICT ({', '.join(conflict)}) {action}"
    if conn.dialect.name == "postgresql":
        _copy_upsert(conn, table, columns, rows, cols, on_conflict)
        return
    marks = ", ".join("?" * len(columns))
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) {on_conflict}",
        _processed(conn, table, columns, rows))


def _processed(conn: sa.Connection, table: sa.Table, columns: tuple[str, ...],
               rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    dialect = conn.dialect
    procs = [(i, p) for i, name in enumerate(columns)
             if not isinstance(table.c[name].type, sa.JSON)
             and (p := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))]
    if not procs:
        return rows
    out = [list(row) for row in rows]
    for i, proc in procs:  # column by column: one memo and one tight loop each
        memo: dict[Any, Any] = {}  # the batch's timestamps are one object, dates repeat
        for values in out:
            value = values[i]
            if value is not None:
                done = memo.get(value)
                if done is None:
                    done = memo[value] = proc(value)
                values[i] = done
    return [tuple(values) for values in out]


def _copy_upsert(conn: sa.Connection, table: sa.Table, columns: tuple[str, ...],
                 rows: list[tuple[Any, ...]], cols: str, on_conflict: str) -> None:
    stage = f"_stage_{table.name}"
    conn.exec_driver_sql(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
                         f"SELECT {cols} FROM {table.name} WITH NO DATA")
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage} {on_conflict}")
    conn.exec_driver_sql(f"DROP TABLE {stage}")


def _one_of(conn: sa.Connection, column: sa.ColumnElement[Any],
            values: list[Any]) -> sa.ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``= ANY(:array)``, one parameter
    instead of thousands (binding and planning them dominated the batch).
    Elsewhere one *expanding* parameter: the statement compiles once and is
    cached, where a literal list coerces and names every value each batch."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(sa.bindparam(None, values, expanding=True))


def _existing_voters(conn: sa.Connection, source: str,
                     ids: list[str]) -> dict[str, tuple[int, str, int | None]]:
    found: dict[str, tuple[int, str, int | None]] = {}
    for chunk in _chunks(ids):
        rows = conn.execute(
            sa.select(voters.c.external_id, voters.c.id, voters.c.record_hash,
                      voters.c.household_id)
            .where(voters.c.source == source, _one_of(conn, voters.c.external_id, chunk)))
        for row in rows:
            external_id, pk, record_hash, household_id = cast(tuple[Any, ...], row)
            found[external_id] = (pk, record_hash, household_id)
    return found


def _household_ids(conn: sa.Connection, keys: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(keys):
        rows = conn.execute(sa.select(households.c.address_key, households.c.id)
                            .where(_one_of(conn, households.c.address_key, chunk)))
        found.update(cast(tuple[Any, ...], row) for row in rows)
    return found


def _ensure_households(conn: sa.Connection,
                       wanted: dict[str, tuple[Residence, list[Any]]],
                       now: datetime) -> tuple[dict[str, int], int]:
    """Ids for every wanted address key, creating the missing households."""
    ids = _household_ids(conn, list(wanted))
    missing = [k for k in wanted if k not in ids]
    if missing:
        rows = [_household_row(*wanted[k], now) for k in missing]
        bulk_upsert(conn, households, HOUSEHOLD_COLUMNS, rows, ("address_key",), ())
        ids.update(_household_ids(conn, missing))
    return ids, len(missing)


def _household_row(home: Residence, voter: list[Any], now: datetime) -> tuple[Any, ...]:
    values = [home.key, home.street_line, home.unit, home.city, home.state, home.zip_code,
              voter[COUNTY], voter[PRECINCT], 0, now, now]  # HOUSEHOLD_COLUMNS order
    for i, limit in _HH_LIMITS:
        values[i] = _fit(values[i], limit)
    return tuple(values)


def _fit(value: Any, limit: int | None) -> Any:
    if limit and isinstance(value, str) and len(value) > limit:
        return value[:limit]
    return value


def _recount(conn: sa.Connection, household_ids: set[int], now: datetime) -> None:
    """Recompute voter_count from the voters table for the touched households."""
    count = (sa.select(sa.func.count()).select_from(voters)
             .where(voters.c.household_id == households.c.id).scalar_subquery())
    for chunk in _chunks(sorted(household_ids)):
        conn.execute(households.update().where(_one_of(conn, households.c.id, chunk))
                     .values(voter_count=count, updated_at=now))


@dataclass(slots=True)
class _Writer:
    """The batch's database work; the engine runs it in the batch transaction."""

    source: str
    mode: str
    rows: list[list[Any]]
    homes: list[Residence | None]
    record_json: Callable[[list[str]], str]

    def __call__(self, conn: sa.Connection) -> dict[str, int]:
        now = utcnow()
        counts = {"voters_created": 0, "voters_updated": 0, "voters_unchanged": 0,
                  "voters_skipped": 0, "households_created": 0}
        pending, touched = self._classify(conn, counts)
        if not pending:
            return counts
        wanted = {home.key: (home, row) for row, home in pending if home}
        ids, counts["households_created"] = _ensure_households(conn, wanted, now)
        values = []
        for row, home in pending:
            household_id = ids[home.key] if home else None
            if household_id is not None:
                touched.add(household_id)
            # A new tuple, the rows left as read: calling the writer twice is harmless.
            values.append((*row[:RECORD], self.record_json(row[RECORD]),
                           *row[RECORD + 1:HOUSEHOLD_ID], household_id, now, now))
        bulk_upsert(conn, voters, WRITE_COLUMNS, values, ("source", "external_id"),
                    tuple(c for c in WRITE_COLUMNS
                          if c not in ("source", "external_id", "created_at")))
        _recount(conn, touched, now)
        return counts

    def _classify(self, conn: sa.Connection, counts: dict[str, int],
                  ) -> tuple[list[tuple[list[Any], Residence | None]], set[int]]:
        """New / changed / unchanged / skipped, against what is stored now."""
        existing = _existing_voters(conn, self.source, [r[EXTERNAL_ID] for r in self.rows])
        pending: list[tuple[list[Any], Residence | None]] = []
        touched: set[int] = set()
        for row, home in zip(self.rows, self.homes, strict=True):
            current = existing.get(row[EXTERNAL_ID])
            if current is None:
                if self.mode == "incremental":
                    counts["voters_skipped"] += 1
                    continue
                counts["voters_created"] += 1
            elif current[1] == row[RECORD_HASH]:
                counts["voters_unchanged"] += 1
                continue
            else:
                counts["voters_updated"] += 1
                if current[2] is not None:
                    touched.add(current[2])
            pending.append((row, home))
        return pending, touched


# --------------------------------------------------------------------------- job type


class ImportVoters:
    """Import a voter file (see module docstring for the guarantees)."""

    name: ClassVar[str] = "import_voters"
    needs_upload: ClassVar[bool] = True
    hidden: ClassVar[bool] = False

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
        state = _run_state(ctx)
        offset = int(checkpoint["offset"]) if checkpoint else state.data_offset
        row = int(checkpoint["row"]) if checkpoint else state.first_row
        read = _read_batch(ctx, state, offset, row)
        source, prefix, job_id = state.layout.name, state.hash_prefix, ctx.job_id
        rows = [_voter_row(r, source, prefix, job_id) for r in read.records]
        writer = _Writer(source, str(ctx.params.get("mode", "full")), rows,
                         [r.household for r in read.records], state.reader.record_json)
        return Batch(
            checkpoint={"offset": read.offset, "row": read.row},
            processed=read.processed, succeeded=read.processed - read.failed,
            failed=read.failed, errors=read.errors, done=read.done,
            write=writer if rows else None,
            counts={"rows_read": read.processed, "item_errors": read.failed,
                    "item_warnings": read.warnings, "rows_superseded": read.superseded},
            result=_result_fields(ctx.params, state.layout),
        )


def _result_fields(params: Params, layout: Layout) -> dict[str, Any]:
    fields: dict[str, Any] = {"layout": layout.name,
                              "requested_format": params.get("requested_format", layout.name)}
    if params.get("requested_format") == "auto":
        fields["detected"] = params.get("detection")
    return fields


register(ImportVoters())
