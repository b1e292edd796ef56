"""The voter file reader: layouts, detection, pre-flight checks and the mess."""

from __future__ import annotations

import gc
import gzip
import io

import pytest
from tests.unit.voter_rows import iter_rows

from cocoa.domain.errors import InputError, Problem
from cocoa.domain.voter_files import (
    LAYOUTS,
    NC_STATEWIDE,
    OH_SWVF,
    SIMPLE_CSV,
    RowIssue,
    RowReader,
    VoterRecord,
    inspect_file,
    iter_lines,
    read_header_line,
    resolve_layout,
)
from cocoa.domain.voter_files.header import detect_layout
from cocoa.domain.voter_files.keys import simple_csv_key
from cocoa.domain.voter_files.row_reader import parse_date
from cocoa.domain.voter_files.split import split_line
from cocoa.samples.voters import MESS_KINDS, SIMPLE_KINDS, generate, generate_nc

SIMPLE_HEADER = "first_name,last_name,email,address,city,state,zip"


def read_all(data: bytes, fmt: str = "auto") -> list[VoterRecord | RowIssue]:
    stream = io.BytesIO(data)
    found = inspect_file(stream, fmt, 10**9)
    header = read_header_line(stream)
    assert header is not None
    detection = resolve_layout(header, found.layout.name)
    reader = RowReader(detection.layout, detection.header)
    return [item for _, item in iter_rows(stream, reader, found.data_offset, found.first_row)]


def records(data: bytes, fmt: str = "auto") -> list[VoterRecord]:
    return [i for i in read_all(data, fmt) if isinstance(i, VoterRecord)]


def issues(data: bytes, fmt: str = "auto") -> list[RowIssue]:
    return [i for i in read_all(data, fmt) if isinstance(i, RowIssue)]


def ohio(*rows: list[str], extra: tuple[str, ...] = ()) -> bytes:
    header = [*OH_SWVF.columns, *extra]
    lines = [",".join(header)]
    for values in rows:
        lines.append(",".join(values))
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def ohio_row(voter_id: str, last: str = "SMITH", extra: tuple[str, ...] = (),
             **overrides: str) -> list[str]:
    values = {c: "" for c in OH_SWVF.columns}
    values.update(SOS_VOTERID=voter_id, LAST_NAME=last, FIRST_NAME="ANN",
                  RESIDENTIAL_ADDRESS1="12 OAK ST", RESIDENTIAL_CITY="COLUMBUS",
                  RESIDENTIAL_STATE="OH", RESIDENTIAL_ZIP="43004",
                  DATE_OF_BIRTH="1970-01-31", REGISTRATION_DATE="2001-05-06")
    values.update(overrides)
    return [values[c] for c in OH_SWVF.columns] + list(extra)


# ------------------------------------------------------------------ splitting


def test_enclosed_fields_keep_inner_quotes_and_undouble() -> None:
    values, stray = split_line('"A"\t"O"NEIL"\t"=HYPERLINK(""x"",""y"")"\t""\tplain',
                               NC_STATEWIDE)
    assert values == ["A", 'O"NEIL', '=HYPERLINK("x","y")', "", "plain"]
    assert not stray


def test_csv_quote_inside_an_unquoted_field_is_data() -> None:
    assert split_line('1,O"NEIL,"a,b"', OH_SWVF) == (["1", 'O"NEIL', "a,b"], False)


def test_csv_unclosed_quote_is_kept_literally_and_flagged() -> None:
    assert split_line('1,"JACK,SMITH', OH_SWVF) == (["1", '"JACK', "SMITH"], True)


# ------------------------------------------------------------------ encodings


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-8", "utf-8-sig"])
def test_munoz_survives_every_encoding(encoding: str) -> None:
    data = ohio(ohio_row("OH1", last="MUÑOZ"), ohio_row("OH2", last="PEÑA"))
    text = data.decode("latin-1")
    (first, second) = records(text.encode(encoding))
    assert (first.fields["last_name"], second.fields["last_name"]) == ("MUÑOZ", "PEÑA")
    assert first.record["LAST_NAME"] == "MUÑOZ"


def test_mixed_encodings_fall_back_per_line() -> None:
    header = SIMPLE_HEADER.encode()
    data = b"\n".join([header, "JOSÉ,MUÑOZ,,1 OAK ST,X,NC,27701".encode(),
                       "JOSÉ,PEÑA,,2 OAK ST,X,NC,27701".encode("latin-1"),
                       b"ANN,O\x92NEIL,,3 OAK ST,X,NC,27701", b""])
    names = [r.fields["last_name"] for r in records(data)]
    assert names == ["MUÑOZ", "PEÑA", "O\u2019NEIL"]  # 0x92 is cp1252's right quote


def test_bytes_no_layout_encoding_accepts_are_an_item_error() -> None:
    data = b"\n".join([SIMPLE_HEADER.encode(), b"ANN,B\x81AD,,1 OAK ST,X,NC,27701",
                       b"BOB,GOOD,,1 OAK ST,X,NC,27701", b""])
    problems = issues(data)
    assert [(p.row, p.code) for p in problems] == [(2, "undecodable")]
    assert "\\x81" in problems[0].message and "UTF-8" in problems[0].message
    assert [r.fields["first_name"] for r in records(data)] == ["BOB"]


def test_falling_back_to_another_encoding_leaves_no_reference_cycles() -> None:
    """Each line that is not UTF-8 fails one decode before another succeeds;
    that failure once left a reference cycle behind per line (exception,
    traceback, frame) and collecting them was a third of an import's parse."""
    data = b"\n".join([SIMPLE_HEADER.encode(),
                       *(f"JOSÉ,PEÑA,,{n} OAK ST,X,NC,27701".encode("latin-1")
                         for n in range(200)),
                       b"ANN,B\x81AD,,1 OAK ST,X,NC,27701", b""])
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage
    try:
        items = read_all(data)
        gc.collect()
        # Only this kind: other tests' threads may leave garbage of their own.
        left = sum(isinstance(thing, UnicodeDecodeError) for thing in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert sum(isinstance(item, VoterRecord) for item in items) == 200
    assert [item.code for item in items if isinstance(item, RowIssue)] == ["undecodable"]
    assert left == 0


# ------------------------------------------------------------------ structure mess


def test_bom_crlf_blank_lines_and_header_case() -> None:
    body = ohio(ohio_row("OH1"), ohio_row("OH2")).decode("latin-1")
    header, rest = body.split("\r\n", 1)
    text = header.lower() + "\r\n\r\n   \r\n" + rest.replace("\r\nOH2", "\r\n,,,,\r\nOH2")
    data = b"\xef\xbb\xbf" + text.encode()
    items = read_all(data)
    assert all(isinstance(i, VoterRecord) for i in items)
    assert [i.row for i in items] == [4, 6]  # physical lines: blanks keep their numbers
    assert inspect_file(io.BytesIO(data), "auto", 10).rows == 2


def test_ragged_rows_name_the_field_counts() -> None:
    short = ohio_row("OH1")[:-3]
    long = [*ohio_row("OH2"), "X"]
    problems = issues(ohio(short, long, ohio_row("OH3")))
    width = len(OH_SWVF.columns)
    assert [(p.row, p.code) for p in problems] == [(2, "ragged_row"), (3, "ragged_row")]
    assert f"has {width - 3} fields but the header has {width}" in problems[0].message
    assert f"has {width + 1} fields" in problems[1].message


def test_a_delimiter_at_every_line_end_gives_an_unnamed_column() -> None:
    text = ohio(ohio_row("OH1"), ohio_row("OH2")).decode("latin-1")
    data = text.replace("\r\n", ",\r\n").encode("latin-1")
    assert [r.record[f"column_{len(OH_SWVF.columns) + 1}"] for r in records(data)] == ["", ""]


def test_an_extra_empty_field_is_ragged_not_shifted() -> None:
    (problem,) = issues(ohio([*ohio_row("OH1"), ""]))
    assert problem.code == "ragged_row"


def test_unclosed_quote_does_not_swallow_following_rows() -> None:
    rows = [ohio_row("OH1", MIDDLE_NAME='"JACK'), ohio_row("OH2"),
            ohio_row("OH3", FIRST_NAME='"BROKEN, QUOTE'), ohio_row("OH4")]
    items = read_all(ohio(*rows))
    assert [getattr(i, "external_id", None) or i.code for i in items] == [  # type: ignore
        "OH1", "OH2", "unbalanced_quote", "OH4"]
    first = items[0]
    assert isinstance(first, VoterRecord)
    assert first.fields["middle_name"] == '"JACK'
    assert [w.code for w in first.warnings] == ["stray_quote"]


def test_missing_id_bad_date_bad_number() -> None:
    problems = issues(ohio(ohio_row(""), ohio_row("OH2")))
    assert [(p.row, p.code) for p in problems] == [(2, "missing_id")]
    assert "SOS_VOTERID" in problems[0].message
    (record,) = records(ohio(ohio_row("OH1", DATE_OF_BIRTH="1970-02-30",
                                      REGISTRATION_DATE="2001-05-06")))
    assert record.fields["birth_date"] is None
    assert str(record.fields["registration_date"]) == "2001-05-06"
    assert [(w.code, w.fatal) for w in record.warnings] == [("bad_date", False)]
    assert "1970-02-30" in record.warnings[0].message
    assert record.record["DATE_OF_BIRTH"] == "1970-02-30"  # the source text is kept


def test_ohio_election_tail_is_accepted_and_kept() -> None:
    extra = ("PRIMARY-03/07/2000", "GENERAL-11/07/2000", "GENERAL-11/03/2026")
    (record,) = records(ohio(ohio_row("OH1", extra=("X", "", "D")), extra=extra))
    assert record.record["GENERAL-11/03/2026"] == "D"
    assert len(record.record) == len(OH_SWVF.columns) + 3


def test_formulas_html_and_spaces_are_data() -> None:
    rows = [ohio_row("OH1", FIRST_NAME='"=HYPERLINK(""http://x"",""y"")"',
                     LAST_NAME="<script>alert(1)</script>",
                     RESIDENTIAL_ADDRESS1="12   NORTH  OAK    STREET")]
    (record,) = records(ohio(*rows))
    assert record.fields["first_name"] == '=HYPERLINK("http://x","y")'
    assert record.fields["last_name"] == "<script>alert(1)</script>"
    assert record.record["RESIDENTIAL_ADDRESS1"] == "12   NORTH  OAK    STREET"  # as given
    assert record.fields["res_street"] == "12 NORTH OAK STREET"


def test_parse_date_formats() -> None:
    assert str(parse_date("03/07/2000", "MDY")) == "2000-03-07"
    assert str(parse_date("2000-03-07", "YMD")) == "2000-03-07"
    assert str(parse_date("2000-03-07 00:00:00", "YMD")) == "2000-03-07"
    for bad in ("13/45/2020", "02/30/2019", "N/A", "", "3/7/00", "2000-3"):
        assert parse_date(bad, "MDY") is None


def test_reading_from_a_byte_offset_resumes_exactly() -> None:
    gen = generate_nc(300, seed=3)
    stream = io.BytesIO(gen.data)
    found = inspect_file(stream, "auto", 10**6)
    header = read_header_line(stream)
    assert header is not None
    reader = RowReader(NC_STATEWIDE, resolve_layout(header, "nc_statewide").header)
    full = list(iter_rows(stream, reader, found.data_offset, found.first_row))
    line, _ = full[120]
    tail = list(iter_rows(io.BytesIO(gen.data), reader, line.start, line.number))
    assert [(ln.number, repr(item)) for ln, item in tail] == [
        (ln.number, repr(item)) for ln, item in full[120:]]


# ------------------------------------------------------------------ layouts


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_detection_picks_each_layout_and_says_why(layout: str) -> None:
    gen = generate(layout, 30, seed=1)
    first_line = gen.data.split(b"\n", 1)[0]
    detection = detect_layout(first_line)
    assert detection.layout.name == layout
    assert detection.reason.startswith(f"detected {layout}")


def test_detection_prefers_the_more_specific_layout() -> None:
    header = ",".join([*OH_SWVF.columns, "email"])  # also has first_name,last_name
    detection = detect_layout(header)
    assert detection.layout is OH_SWVF
    assert "also compatible with simple_csv" in detection.reason


def test_simple_csv_header_spellings() -> None:
    for header in ("FirstName,LastName", "first_name,last_name", "First Name,LAST-NAME",
                   "firstname,lastname"):
        assert detect_layout(header).layout is SIMPLE_CSV


def test_unrecognised_header_explains_what_each_layout_needed() -> None:
    with pytest.raises(InputError) as info:
        detect_layout("name,street,town")
    assert info.value.problem is Problem.UNPROCESSABLE and info.value.code == "unknown_layout"
    assert "nc_statewide: missing ncid" in info.value.message
    assert "simple_csv: missing first_name, last_name" in info.value.message


# ------------------------------------------------------------------ pre-flight


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty_file"),
    (b"\r\n  \n", "empty_file"),
    (b"\xef\xbb\xbf" + SIMPLE_HEADER.encode() + b"\r\n\r\n", "no_data_rows"),
    (b"\xff\xfeF\x00", "unsupported_encoding"),
])
def test_inspect_rejects_files_without_data(data: bytes, code: str) -> None:
    with pytest.raises(InputError) as info:
        inspect_file(io.BytesIO(data), "auto", 100)
    assert info.value.code == code and info.value.problem is Problem.UNPROCESSABLE
    assert info.value.message.endswith(".")


SIMPLE_ROWS = ["Ann,Lee,a@x.org,1 Main St,Durham,NC,27701", "Bo,Ng,,2 Main St,Durham,NC,27701",
               "Cy,Oh,,3 Main St,Durham,NC,27701"]


@pytest.mark.parametrize(("data", "code", "says"), [
    ("\n".join([SIMPLE_HEADER, *SIMPLE_ROWS]).encode("utf-16-le"), "unsupported_encoding",
     "UTF-16"),
    ("\n".join([SIMPLE_HEADER, *SIMPLE_ROWS]).encode("utf-16-be"), "unsupported_encoding",
     "UTF-16"),
    (gzip.compress(SIMPLE_HEADER.encode() + b"\n"), "compressed_file", "gzip"),
    (b"PK\x03\x04" + b"\x00" * 60, "compressed_file", "zip"),
])
def test_inspect_names_utf16_and_compressed_files(data: bytes, code: str, says: str) -> None:
    with pytest.raises(InputError) as info:
        inspect_file(io.BytesIO(data), "auto", 100)
    assert info.value.code == code and info.value.problem is Problem.UNPROCESSABLE
    assert says in info.value.message


def test_nul_bytes_in_the_header_are_dropped_like_in_rows() -> None:
    header = SIMPLE_HEADER.replace("first_name", "first_\x00name\x00")
    found = records("\n".join([header, *SIMPLE_ROWS]).encode())
    assert [r.fields["first_name"] for r in found] == ["Ann", "Bo", "Cy"]


@pytest.mark.parametrize("newline", ["\r", "\n", "\r\n"])
def test_bare_cr_line_endings_keep_offsets_and_row_numbers(newline: str) -> None:
    data = (newline.join([SIMPLE_HEADER, "", *SIMPLE_ROWS]) + newline).encode()
    stream = io.BytesIO(data)
    found = inspect_file(stream, "auto", 100)
    lines = list(iter_lines(stream, 0, 1))
    assert found.rows == 3 and [line.number for line in lines] == [1, 2, 3, 4, 5]
    assert all(data[line.start:line.end].rstrip(b"\r\n") == line.raw for line in lines)
    resumed = list(iter_lines(stream, lines[3].start, lines[3].number))  # a checkpoint
    assert [(line.number, line.raw) for line in resumed] == [(4, b"Bo,Ng,,2 Main St,Durham,"
                                                             b"NC,27701"), *(
        (line.number, line.raw) for line in lines[4:])]
    assert [r.row for r in records(data)] == [3, 4, 5]


def test_stray_cr_inside_a_line_of_an_lf_file_stays_data() -> None:
    data = "\n".join([SIMPLE_HEADER, "Ann,Lee,a@x.org,1 Main\rSt,Durham,NC,27701"]).encode()
    assert [line.number for line in iter_lines(io.BytesIO(data), 0, 1)] == [1, 2]


def test_overlong_address_is_a_warning_and_no_household() -> None:
    data = "\n".join([SIMPLE_HEADER, *SIMPLE_ROWS[:1],
                      f"Lo,Ng,,1 {'LONG ' * 90}ST,Durham,NC,27701"]).encode()
    first, long = records(data)
    assert first.household is not None and long.household is None
    assert [(w.row, w.code, w.fatal) for w in long.warnings] == [(3, "address_too_long", False)]


def test_inspect_names_missing_required_columns() -> None:
    data = b"ncid\tfirst_name\tlast_name\n1\tA\tB\n"
    with pytest.raises(InputError) as info:
        inspect_file(io.BytesIO(data), "nc_statewide", 100)
    assert info.value.code == "missing_columns"
    assert info.value.details["missing"] == ["res_street_address", "res_city_desc",
                                             "state_cd", "zip_code"]
    assert "res_street_address" in info.value.message


def test_inspect_counts_rows_and_enforces_the_limit() -> None:
    gen = generate_nc(120, seed=2)
    found = inspect_file(io.BytesIO(gen.data), "auto", 120)
    assert (found.layout, found.rows, found.first_row) == (NC_STATEWIDE, gen.rows, 2)
    with pytest.raises(InputError) as info:
        inspect_file(io.BytesIO(gen.data), "auto", 119)
    assert info.value.code == "too_many_items"
    assert f"{gen.rows} data rows" in info.value.message and "119" in info.value.message


def test_inspect_rejects_unknown_format() -> None:
    with pytest.raises(InputError) as info:
        inspect_file(io.BytesIO(b"a\n1\n"), "florida", 10)
    assert info.value.problem is Problem.UNPROCESSABLE and "oh_swvf" in info.value.message


# ------------------------------------------------------------------ keys and samples


def test_simple_csv_key_is_stable_across_spellings() -> None:
    def key(line: str, first: str = "Ann") -> str:
        (record,) = records(f"{SIMPLE_HEADER}\n{first},Lee,,{line},Durham,NC,27701\n".encode())
        return record.external_id

    same = {key("123 North Oak Street Apt 4"), key("123 N OAK ST # 4"),
            key("123  n oak st unit 4"), key("123 N Oak St", first=" ANN ") and
            key("123 NORTH OAK ST APARTMENT 4")}
    assert len(same) == 1 and same.pop().startswith("sc:")
    assert key("123 N OAK ST APT 5") != key("123 N OAK ST APT 4")
    assert key("123 S OAK ST APT 4") != key("123 N OAK ST APT 4")
    assert simple_csv_key("Ann", "Lee", None, "A@X.ORG", None) == simple_csv_key(
        "ANN", "LEE", None, "a@x.org", "555")


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_generators_truth_matches_reader(layout: str) -> None:
    gen = generate(layout, 500, seed=13)
    assert gen.data == generate(layout, 500, seed=13).data  # seeded
    kinds = SIMPLE_KINDS if layout == "simple_csv" else MESS_KINDS
    assert set(gen.mess) == set(kinds)
    items = read_all(gen.data)
    assert len(items) == gen.rows
    assert {i.row: i.code for i in items if isinstance(i, RowIssue)} == gen.errors
    warned = {w.row: w.code for i in items if isinstance(i, VoterRecord) for w in i.warnings}
    # same_voter_key is the import's (a later row supersedes), not the reader's
    assert warned == {row: code for row, code in gen.warnings.items() if code != "same_voter_key"}
    assert (layout == "simple_csv") is ("same_voter_key" in gen.warnings.values())


def test_generator_mess_can_be_switched_off() -> None:
    gen = generate("contra_costa", 200, seed=1, mess_rate=0.0)
    assert not gen.errors and not gen.warnings and not gen.mess
    assert len(gen.households) == gen.rows == 200


@pytest.mark.parametrize("layout", ["nc_statewide", "oh_swvf", "contra_costa"])
def test_cheap_voter_id_agrees_with_parse(layout: str) -> None:
    """The duplicate-id pre-pass must accept and reject exactly what parse does."""
    gen = generate(layout, 800, seed=17, mess_rate=0.05)
    extra = ['"AB1"\t' * 3, "\x00", "MU\xd1OZ"]  # odd lines on top of the generated mess
    data = gen.data + "\n".join(extra).encode("latin-1") + b"\n"
    stream = io.BytesIO(data)
    header = read_header_line(stream)
    assert header is not None
    detection = resolve_layout(header, layout)
    reader = RowReader(detection.layout, detection.header)
    for line, item in iter_rows(stream, reader, header.end, 2):
        expected = item.external_id if isinstance(item, VoterRecord) else None
        assert reader.voter_id(line) == expected, line.number


@pytest.mark.parametrize("year", ["19²5", "197½", "1970.0"])
def test_a_birth_year_that_only_looks_numeric_is_a_warning_not_a_crash(year: str) -> None:
    """``str.isdigit`` accepts '²', which ``int`` refuses: the row must keep
    its voter and say what is wrong, never stop the import."""
    header = "\t".join(f'"{c}"' for c in NC_STATEWIDE.columns)
    row = {c: "" for c in NC_STATEWIDE.columns} | {
        "ncid": "AA1", "last_name": "SMITH", "first_name": "ANN", "birth_year": year,
        "res_street_address": "1 MAIN ST", "res_city_desc": "RALEIGH", "zip_code": "27601"}
    line = "\t".join(f'"{row[c]}"' for c in NC_STATEWIDE.columns)
    (record,) = records(f"{header}\r\n{line}\r\n".encode(), "nc_statewide")
    assert record.fields["birth_year"] is None and record.record["birth_year"] == year
    assert [w.code for w in record.warnings] == ["bad_number"]
