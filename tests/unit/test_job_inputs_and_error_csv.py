"""Issue 17 items 4-5 without a server: the ``input`` helpers and the errors.csv cells."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile

from cocoa.jobs.error_export import COLUMNS, ExportedError, csv_chunks, safe_cell
from cocoa.jobs.inputs import compression_of, peek, public_input, public_result
from cocoa.web.view import fmt_input, short_error


def _zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("voters.txt", "a,b\n1,2\n")
    return out.getvalue()


def test_compression_from_content_first_then_name() -> None:
    assert compression_of("voters.txt", gzip.compress(b"a,b\n")[:4]) == "gzip"
    assert compression_of("voters.txt", _zip_bytes()[:4]) == "zip"
    assert compression_of("voters.zip", b"a,b\n") is None  # the content says plain text
    assert compression_of("NCVOTER92.ZIP") == "zip" and compression_of("x.csv.gz") == "gzip"
    assert compression_of("voters.csv") is None and compression_of(None) is None


def test_peek_leaves_the_stream_at_its_start() -> None:
    stream = io.BytesIO(b"\x1f\x8b\x08\x00rest")
    stream.seek(3)
    assert peek(stream) == b"\x1f\x8b\x08\x00" and stream.tell() == 0


def test_public_input_prefers_the_layout_the_job_reported() -> None:
    recorded = {"input": {"filename": "a.csv", "bytes": 10, "compressed": None, "layout": None}}
    assert public_input({"format": "auto"}, recorded)["layout"] == "auto"
    assert public_input({}, {**recorded, "layout": "oh_swvf"})["layout"] == "oh_swvf"
    assert public_input({"format": "x"}, {}) is None  # no file, or a job from before it was recorded
    assert public_result({**recorded, "rows_read": 3}) == {"rows_read": 3}  # shown once, as input


def test_cells_that_look_like_formulas_are_text() -> None:
    for dangerous in ("=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("OH1,SMITH") == "OH1,SMITH" and safe_cell(None) == "" and safe_cell(17) == "17"


def test_csv_has_a_header_and_quotes_lines_with_commas_and_quotes() -> None:
    line = 'OH1,"SMITH, JR",ANN'
    errors = iter([ExportedError(3, "row 3", "error", "ragged_row", "row 3: has 3 fields", line),
                   ExportedError(4, "row 4", "warning", "bad_date", "=bad", None)])
    text = b"".join(csv_chunks(errors)).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(COLUMNS)
    assert rows[1] == ["3", "row 3", "error", "ragged_row", "row 3: has 3 fields", line]
    assert rows[2] == ["4", "row 4", "warning", "bad_date", "'=bad", ""]


def test_list_cells() -> None:
    assert fmt_input({"filename": "a", "bytes": 12345, "compressed": "zip", "layout": "oh_swvf"}) == \
        "12,345 bytes · zip · oh_swvf"
    assert fmt_input(None) == "—"
    assert short_error("short") == "short"
    cut = short_error("word " * 40)
    assert len(cut) == 80 and cut.endswith("…")
