"""Voter files: layouts, and a line-by-line reader that survives real-world mess.

One idea per module, in the order a file is read:

* :mod:`.layouts` - each publisher's layout as pure data;
* :mod:`.limits` - bounds on what validation reads, and their refusals;
* :mod:`.split` - one decoded line into fields;
* :mod:`.header` - the header row and layout detection;
* :mod:`.lines` - physical lines on bytes, blank lines, counting;
* :mod:`.issues` - what can be wrong with one row;
* :mod:`.keys` - a row's household, and a voter key for files without an id;
* :mod:`.records` - what a parsed row is;
* :mod:`.row_reader` - one line into a row, or why not;
* :mod:`.mapping` - which column feeds each field of a hand-made or vendor file;
* :mod:`.inspection` - the pre-flight check of an upload;
* :mod:`.preview` - what an import would store, before it starts.

This package exports what the rest of the code base uses; tests of the
internals import them from their module.
"""

from __future__ import annotations

from cocoa.domain.voter_files.header import Header
from cocoa.domain.voter_files.inspection import inspect_file, read_header_line, resolve_layout
from cocoa.domain.voter_files.issues import RowIssue
from cocoa.domain.voter_files.layouts import (
    CONTRA_COSTA,
    LAYOUTS,
    NC_STATEWIDE,
    OH_SWVF,
    SIMPLE_CSV,
    Layout,
    get_layout,
)
from cocoa.domain.voter_files.limits import (
    MAX_HEADER_BYTES,
    MAX_HEADER_COLUMNS,
    MAX_LINE_BYTES,
    too_many_columns,
)
from cocoa.domain.voter_files.lines import (
    Line,
    count_data_lines,
    is_blank,
    iter_lines,
    iter_records,
)
from cocoa.domain.voter_files.records import CANONICAL_FIELDS, PARSER_VERSION, VoterRecord
from cocoa.domain.voter_files.row_reader import RowReader

__all__ = [
    "CANONICAL_FIELDS", "CONTRA_COSTA", "LAYOUTS", "MAX_HEADER_BYTES", "MAX_HEADER_COLUMNS",
    "MAX_LINE_BYTES", "NC_STATEWIDE", "OH_SWVF", "PARSER_VERSION", "SIMPLE_CSV", "Header",
    "Layout", "Line", "RowIssue", "RowReader", "VoterRecord", "count_data_lines", "get_layout",
    "inspect_file", "is_blank", "iter_lines", "iter_records", "read_header_line", "resolve_layout",
    "too_many_columns",
]
