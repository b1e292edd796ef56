"""The ``import_voters`` job type: validate, plan, run a batch, and the run's state.

The checkpoint is ``{"offset": <byte offset of the next unread line>,
"row": <its row number>}``; a resumed job seeks straight there, so no row is
read twice and none is skipped.

Within one file the last row for a voter id wins, also across batches. A
single pass over the ids (cheap: split and look at one column) before the
first write of every run finds the rows a later row supersedes (in memory
bounded whatever the file's size, see :mod:`.repeats`); those are
dropped from each batch before it is written (a helper may parse the first
batches while that pass runs). Writing them and then overwriting them would
also end with the last row, but a re-import of the same file would then
rewrite those voters twice instead of reporting them unchanged.

A large file is parsed by helper processes a batch or two ahead of the
writes (a :class:`~cocoa.jobs.pipeline.Pipeline` running the
:class:`~cocoa.jobtypes.import_voters.parsing.Parser`): parsing and writing
each take a large part of an import's CPU, and this way they overlap on two
cores. The worker still cuts the lines and does every database write, so a
helper cannot change what is stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

from cocoa.db.driver import driver_for
from cocoa.domain.voter_files import (
    Layout,
    count_data_lines,
    get_layout,
    inspect_file,
    is_blank,
    iter_records,
    read_header_line,
    resolve_layout,
)
from cocoa.jobs.groups import Part
from cocoa.jobs.pipeline import Pipeline
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
from cocoa.jobtypes.import_voters.lines import Lines, Position, batches_from, one_batch
from cocoa.jobtypes.import_voters.parsed import Read
from cocoa.jobtypes.import_voters.parsing import Parser
from cocoa.jobtypes.import_voters.ranges import range_of, split_rows
from cocoa.jobtypes.import_voters.repeats import superseded_rows
from cocoa.jobtypes.import_voters.saved_mappings import resolve_mapping
from cocoa.jobtypes.import_voters.writing import Writer
from cocoa.jobtypes.input_errors import domain_input, request_input
from cocoa.jobtypes.requests import VOTER_MODE

STATE = "import_voters"  # ctx.cache key of the run's _RunState
AHEAD = "import_voters.ahead"  # ctx.cache key of the run's parse-ahead Pipeline


class ImportVoters:
    """Import a voter file (see the module docstring for the guarantees)."""

    name: ClassVar[str] = "import_voters"
    needs_upload: ClassVar[bool] = True
    hidden: ClassVar[bool] = False
    batch_size_setting: ClassVar[str] = "voter_batch_size"
    uses_helpers: ClassVar[bool] = True  # parse-ahead helper processes

    def validate(self, ctx: CreateContext) -> Params:
        requested = str(ctx.params.get("format") or "auto")
        with request_input():
            mode = VOTER_MODE.choose(ctx.params.get("mode"))
        with domain_input():
            if requested != "auto":
                get_layout(requested)
            if ctx.upload is None:
                raise JobValidationError("A voter file is required.", code="file_required", status=400)
            mapping, mapping_name = resolve_mapping(ctx.conn, ctx.params.get("mapping"))
            # The whole upload is bounded by the group limit; above the per-job
            # limit it becomes a group of jobs (see split).
            found = inspect_file(ctx.upload, requested, ctx.settings.max_items_per_group, mapping)
        return {"format": found.layout.name, "requested_format": requested, "mode": mode,
                "rows": found.rows, "detection": found.reason,
                **_mapping_params(mapping, mapping_name, found.columns_used)}

    def split(self, ctx: CreateContext, params: Params, limit: int) -> list[Part] | None:
        """Row ranges of at most ``limit`` rows (see :mod:`.ranges`); None when the file fits."""
        rows = params.get("rows")
        if not isinstance(rows, int) or rows <= limit or ctx.upload is None:
            return None
        with domain_input():
            ctx.upload.seek(0)
            header_line = read_header_line(ctx.upload)
            assert header_line is not None  # validate read it
            layout = resolve_layout(header_line, str(params["format"]), params.get("mapping")).layout
            return split_rows(ctx.upload, params, layout, header_line.end, header_line.number + 1, limit)

    def plan(self, ctx: RunContext) -> int:
        rows = ctx.params.get("rows")
        if isinstance(rows, int):
            return rows
        state = _run_state(ctx)
        stream = ctx.open_upload()
        try:
            with domain_input():
                return count_data_lines(stream, state.data_offset, state.layout)
        finally:
            stream.close()

    def run_batch(self, ctx: RunContext, checkpoint: Checkpoint | None) -> Batch:
        state = _run_state(ctx, checkpoint)
        read = _without_superseded(_parsed_batch(ctx, state, *_position(state, checkpoint)),
                                   state.superseded, derived_keys=state.layout.id_column is None)
        writer = Writer(state.layout.name, str(ctx.params.get("mode", VOTER_MODE.default)), read.voters,
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


# --------------------------------------------------------------------------- run state


@dataclass(slots=True)
class _RunState:
    """What every batch of one run needs; rebuilt on resume (cheap)."""

    layout: Layout
    parser: Parser
    data_offset: int
    first_row: int
    superseded: dict[int, int] = field(default_factory=dict)  # row -> the later row that wins
    start: Position | None = None  # a group's child: where its row range starts (.ranges)
    end_row: int | None = None  # ... and the row where the next child's range starts


def _run_state(ctx: RunContext, checkpoint: Checkpoint | None = None) -> _RunState:
    """The run's state, built by its first batch (``checkpoint`` is where that
    batch starts)."""
    state = ctx.cache.get(STATE)
    if isinstance(state, _RunState):
        return state
    stream = ctx.open_upload()
    try:
        with domain_input():
            header_line = read_header_line(stream)
            if header_line is None:
                raise JobFailed("The uploaded file is empty.")
            detection = resolve_layout(header_line, str(ctx.params["format"]),
                                       ctx.params.get("mapping"))
            parser = Parser(detection.layout, detection.header, ctx.job_id,
                            copy_text=driver_for(ctx.engine).supports_copy)
            state = _RunState(detection.layout, parser, header_line.end, header_line.number + 1)
            state.start, state.end_row = range_of(ctx.params)
            _start_parse_ahead(ctx, state, checkpoint)
            state.superseded = _superseded_rows(stream, state)
    except JobValidationError as exc:  # the stored file no longer matches: job-level
        raise JobFailed(exc.message) from exc
    finally:
        stream.close()
    ctx.cache[STATE] = state
    return state


def _start_parse_ahead(ctx: RunContext, state: _RunState, checkpoint: Checkpoint | None) -> None:
    """Helper processes for the run, already parsing its first batches (that
    needs no repeated ids) while the worker looks for repeated ids. Helpers
    that cannot start cost speed, not the import: the worker parses. None
    for a file with too few rows left to be worth them."""
    offset, row = _position(state, checkpoint)
    if _rows_left(ctx, state, row) < ctx.settings.parse_ahead_min_rows:
        return
    ahead = Pipeline.start(state.parser.parse, ctx.settings.parse_helpers,
                           receive_timeout=ctx.settings.helper_timeout_seconds,
                           name="voter-import")
    if ahead is None:
        return
    ctx.cache[AHEAD] = ahead
    ctx.closers.append(ahead.close)
    ahead.follow(_batches_from(ctx, state, offset, row))


def _batches_from(ctx: RunContext, state: _RunState, offset: int, row: int,
                  ) -> Iterator[tuple[Position, Lines]]:
    return batches_from(ctx.open_upload, offset, row, state.layout, ctx.batch_size, state.end_row)


def _position(state: _RunState, checkpoint: Checkpoint | None) -> Position:
    """(byte offset, row number) where the batch at ``checkpoint`` starts."""
    if checkpoint:
        return int(checkpoint["offset"]), int(checkpoint["row"])
    return state.start or (state.data_offset, state.first_row)


def _superseded_rows(stream: IO[bytes], state: _RunState) -> dict[int, int]:
    """Rows whose voter id appears again later in the file (last row wins),
    in memory bounded whatever the file's size (see :mod:`.repeats`).

    Mostly only the id bytes are looked at (see ``RowReader.voter_id``);
    layouts without an id column need the full row for their key (those are
    hand-made, small files).
    """
    return superseded_rows(_id_pairs(stream, state))


def _id_pairs(stream: IO[bytes], state: _RunState) -> Iterator[tuple[str, int]]:
    """(voter id, row number) of every row that has one, in file order."""
    reader = state.parser.reader
    for line in iter_records(stream, state.data_offset, state.first_row, state.layout):
        if is_blank(line.raw, state.layout):
            continue
        key = reader.voter_id(line)
        if key is not None:
            yield key, line.number


# --------------------------------------------------------------------------- batches


def _parsed_batch(ctx: RunContext, state: _RunState, offset: int, row: int) -> Read:
    """The batch at ``offset``: from the helper processes when they have it,
    otherwise cut and parsed here, and then the helpers (if the run has them,
    see :func:`_run_state`, and they have not failed) are pointed at the
    batches after this one when enough of the file is left."""
    ahead = ctx.cache.get(AHEAD)
    pipeline = ahead if isinstance(ahead, Pipeline) else None
    read: Read | None = pipeline.take((offset, row)) if pipeline else None
    if read is None:
        lines: Lines = one_batch(ctx.open_upload, offset, row, state.layout, ctx.batch_size,
                                 state.end_row)
        if (pipeline and not pipeline.failed and not lines.done
                and _rows_left(ctx, state, row) >= ctx.settings.parse_ahead_min_rows):
            pipeline.follow(_batches_from(ctx, state, lines.offset, lines.row))
        read = state.parser.parse(lines)
    if read.done and pipeline:
        pipeline.close()
    return read


def _without_superseded(read: Read, superseded: dict[int, int], *,
                        derived_keys: bool = False) -> Read:
    """The batch without the voters a later row of the file replaces.

    With ``derived_keys`` (no id column: name + address [+ birth date]) a
    repeat may be two different people, so each dropped row is reported as a
    warning naming the row kept (issue 17: never merged silently).
    """
    rows = read.voters.rows
    if superseded.keys().isdisjoint(rows):
        return read
    keep = [i for i, number in enumerate(rows) if number not in superseded]
    if derived_keys:
        dropped = [number for number in rows if number in superseded]
        read.errors.extend(same_person_warning(number, superseded[number]) for number in dropped)
        read.warnings += len(dropped)
    read.superseded = len(rows) - len(keep)
    read.voters = read.voters.only(keep)
    return read


def same_person_warning(row: int, kept: int) -> ItemError:
    return ItemError(
        item_ref=f"row {row}", item_index=row, severity="warning", code="same_voter_key",
        message=f"row {row}: same name, address and birth date (where given) as row {kept}, "
        f"so both are one voter and row {kept} was kept; if they are different people, "
        "import the file with a voter id column (or a date of birth column)")


def _mapping_params(mapping: dict[str, str | None] | None, name: str | None,
                    columns: Mapping[str, str]) -> dict[str, Any]:
    """What a job records of its columns: the mapping it was given (resolved,
    so editing a saved mapping never changes it), and the columns used."""
    params: dict[str, Any] = {"columns_used": dict(columns)}
    if mapping:
        params["mapping"] = mapping
    if name:
        params["mapping_name"] = name
    return params


def _rows_left(ctx: RunContext, state: _RunState, row: int) -> int:
    """About how many rows are left from ``row`` (blank lines count as rows)."""
    rows = ctx.params.get("rows")
    first = state.start[1] if state.start else state.first_row
    return rows - (row - first) if isinstance(rows, int) else 0


def _result_fields(params: Params, layout: Layout) -> dict[str, Any]:
    fields: dict[str, Any] = {"layout": layout.name,
                              "requested_format": params.get("requested_format", layout.name)}
    if params.get("requested_format") == "auto":
        fields["detected"] = params.get("detection")
    return fields


register(ImportVoters())
