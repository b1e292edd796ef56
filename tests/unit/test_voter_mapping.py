"""Hand-made and vendor voter files (issue 17, items 0 and 3): column aliases,
mappings, identity without silent merges, delimiters, encodings, multi-line
records and the preview - on the real reader, no database."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from cocoa.domain.addresses import building_household_key
from cocoa.domain.errors import InputError
from cocoa.domain.voter_files import RowIssue, RowReader, VoterRecord
from cocoa.domain.voter_files import preview as preview_module
from cocoa.domain.voter_files.inspection import inspect_file, read_header_line, resolve_layout
from cocoa.domain.voter_files.lines import iter_records
from cocoa.domain.voter_files.mapping import parse_mapping
from cocoa.domain.voter_files.preview import preview_file
from cocoa.samples.vendor_export import generate_vendor


def read_all(data: bytes, format: str = "auto",
             mapping: dict[str, str | None] | None = None) -> list[VoterRecord | RowIssue]:
    """Every data row as the import reads it (same detection, binding, records)."""
    stream = io.BytesIO(data)
    header = read_header_line(stream)
    assert header is not None
    detection = resolve_layout(header, format, mapping)
    reader = RowReader(detection.layout, detection.header)
    return [reader.parse(line) for line in iter_records(stream, header.end, header.number + 1,
                                                         detection.layout)
            if line.raw.strip()]


def voters(items: list[VoterRecord | RowIssue]) -> list[VoterRecord]:
    return [i for i in items if isinstance(i, VoterRecord)]


def refused(data: bytes, code: str, format: str = "auto",
            mapping: dict[str, str | None] | None = None) -> InputError:
    with pytest.raises(InputError) as info:
        read_all(data, format, mapping)
    assert info.value.code == code, info.value.message
    return info.value


# ------------------------------------------------------------------ the issue's vendor export


def test_vendor_export_uses_its_id_and_apt_columns() -> None:
    vendor = generate_vendor(4952, seed=3)
    assert vendor.shared_name_rows > 1000  # the premise: many voters share a name
    stream = io.BytesIO(vendor.data)
    header = read_header_line(stream)
    assert header is not None
    detection = resolve_layout(header, "auto")
    assert detection.layout.name == "simple_csv"
    assert dict(detection.columns_used) == {
        "voter_id": "Voter ID", "first_name": "First Name", "last_name": "Last Name",
        "street": "Street Address", "unit": "Apt", "city": "City", "state": "State",
        "zip": "Zip Code"}
    assert "'Voter ID'" in detection.reason and "'Apt'" in detection.reason
    rows = read_all(vendor.data)
    assert all(isinstance(r, VoterRecord) for r in rows), [r for r in rows if isinstance(r, RowIssue)][:3]
    got = voters(rows)
    assert len({v.external_id for v in got}) == vendor.rows  # no merges at all
    homes = {v.household.key for v in got if v.household}
    assert len(homes) == vendor.households  # flats are households of their own
    assert len({building_household_key(k) for k in homes}) == vendor.buildings
    found = inspect_file(io.BytesIO(vendor.data), "auto", 10_000)
    assert found.rows == vendor.rows


def test_without_an_id_namesakes_at_different_addresses_stay_apart() -> None:
    vendor = generate_vendor(600, seed=5)
    lines = vendor.data.decode().splitlines()
    no_id = "\n".join(line.split(",", 1)[1] for line in lines).encode()
    got = voters(read_all(no_id))
    assert len(got) == vendor.rows
    by_home = {(v.fields["first_name"], v.fields["last_name"], v.household.key)
               for v in got if v.household}
    # Distinct keys exactly where name + household differ: never by name alone.
    assert len({v.external_id for v in got}) == len(by_home)
    assert len(by_home) > len({(v.fields["first_name"], v.fields["last_name"]) for v in got})


def test_date_of_birth_keeps_father_and_son_apart() -> None:
    data = (b"First,Last,Address,City,State,Zip,DOB\n"
            b"John,Smith,1 Oak St,Durham,NC,27701,1950-02-03\n"
            b"John,Smith,1 Oak St,Durham,NC,27701,03/04/1980\n"
            b"John,Smith,1 Oak St,Durham,NC,27701,1950-02-03\n")
    got = voters(read_all(data))
    assert [str(v.fields["birth_date"]) for v in got] == ["1950-02-03", "1980-03-04", "1950-02-03"]
    assert got[0].external_id != got[1].external_id
    assert got[0].external_id == got[2].external_id  # the same person repeated


# ------------------------------------------------------------------ refused up front


def test_a_header_without_an_address_is_refused_naming_columns_and_fields() -> None:
    error = refused(b"first_name,last_name,email\nAnn,Lee,a@x.org\n", "unmappable_file")
    assert "first_name, last_name, email" in error.message
    assert "street address" in error.message and "mapping" in error.message
    assert error.details is not None and error.details["needed"] == ["street"]
    # the same with the simple layout named explicitly
    refused(b"first_name,last_name,email\nAnn,Lee,a@x.org\n", "unmappable_file", "simple_csv")


def test_headers_that_map_nothing_say_how_to_map() -> None:
    error = refused(b"col1,col2,col3\na,b,c\n", "unknown_layout")
    assert "mapping" in error.message and "simple_csv: missing first_name, last_name" in error.message


# ------------------------------------------------------------------ mappings


def test_a_mapping_names_columns_no_alias_knows() -> None:
    data = b"Given,Family,Residence,Flat,Town,Postcode,Ref\nAnn,Lee,5 Elm St,2,Durham,27701,R1\n"
    refused(data, "unknown_layout")
    mapping: dict[str, str | None] = {"first_name": "Given", "last_name": "Family",
                                      "street": "Residence", "unit": "Flat", "city": "Town",
                                      "zip": "Postcode", "voter_id": "Ref"}
    (ann,) = voters(read_all(data, mapping=mapping))
    assert ann.external_id == "R1" and ann.household is not None
    assert ann.household.unit == "2" and ann.household.zip_code == "27701"
    # null switches a column off: ``id`` is a row number here, not a voter id
    data = b"id,first,last,street,city,zip\n1,Ann,Lee,5 Elm St,Durham,27701\n"
    assert voters(read_all(data))[0].external_id == "1"
    assert voters(read_all(data, mapping={"voter_id": None}))[0].external_id.startswith("sc:")


def test_bad_mappings_are_refused_naming_what_is_wrong() -> None:
    data = b"first,last,street\nAnn,Lee,5 Elm St\n"
    error = refused(data, "unknown_column", mapping={"street": "Road", "city": "Town"})
    assert "'Road'" in error.message and "'Town'" in error.message and "first, last, street" in error.message
    with pytest.raises(InputError) as info:
        parse_mapping({"streeet": "Road", "zipp": "Z"})
    assert info.value.code == "invalid_mapping" and "'streeet'" in info.value.message
    assert "'zipp'" in info.value.message and "street" in info.value.message
    for bad in ('["street"]', "{not json", '{"street": 5}', '{"street": ""}'):
        with pytest.raises(InputError) as info:
            parse_mapping(bad)
        assert info.value.code == "invalid_mapping"
    assert parse_mapping(json.dumps({"street": " Road "})) == {"street": "Road"}
    nc_error = refused(data, "mapping_not_supported", "nc_statewide", {"street": "street"})
    assert "fixed columns" in nc_error.message


# ------------------------------------------------------------------ spellings, delimiters, encodings


@pytest.mark.parametrize("header", [
    "First Name,Last Name,Street Address,Address 2,City,State,ZIP Code",
    "first,last,address1,apt,city,state,zipcode",
    "FIRST_NAME,LAST_NAME,Residential Address,Suite,City,ST,Postal Code",
    "fname,surname,addr,unit,town,state,zip5",
])
def test_generous_aliases(header: str) -> None:
    data = f"{header}\nAnn,Lee,5 Elm St,3,Durham,NC,27701\nBo,Lee,5 Elm St,4,Durham,NC,27701\n"
    ann, bo = voters(read_all(data.encode()))
    assert ann.household is not None and bo.household is not None
    assert ann.household.key != bo.household.key  # the flats are two households
    assert building_household_key(ann.household.key) == building_household_key(bo.household.key)
    assert ann.household.zip_code == "27701" and ann.fields["res_city"] == "Durham"


@pytest.mark.parametrize("delimiter", [";", "|", "\t"])
def test_delimiters_are_sniffed(delimiter: str) -> None:
    rows = ["Voter ID,First Name,Last Name,Address,City,Zip", "7,Ann,Lee,\"5 Elm St, Apt 2\",Durham,27701"]
    data = "\n".join(r.replace(",", delimiter).replace(f"Elm St{delimiter}", "Elm St,")
                     for r in rows).encode()
    (ann,) = voters(read_all(data))
    assert ann.external_id == "7" and ann.household is not None and ann.household.unit == "2"


def test_bom_and_cp1252_fallback_with_a_warning() -> None:
    data = "Voter ID,First,Last,Address\n1,Zoë,Muñoz,1 Elm St\n2,Ann,Lee,2 Elm St\n"
    muñoz, lee = voters(read_all(b"\xef\xbb\xbf" + data.encode("cp1252")))
    assert muñoz.fields["first_name"] == "Zoë" and muñoz.fields["last_name"] == "Muñoz"
    assert [w.code for w in muñoz.warnings] == ["not_utf8"] and "cp1252" in muñoz.warnings[0].message
    assert lee.warnings == []
    utf8 = voters(read_all(("\ufeff" + data).encode("utf-8")))
    assert utf8[0].fields["first_name"] == "Zoë" and utf8[0].warnings == []


def test_quoted_fields_spanning_lines_are_one_record() -> None:
    data = (b"Voter ID,First,Last,Address,City\r\n"
            b"1,Ann,Lee,\"5 Elm St\r\nApt 2\",Durham\r\n"
            b"2,Bo,\"Lee\r\nJr\r\n\",\"7 Oak St\",Durham\r\n"
            b"3,Cy,Lee,9 Ash St,Durham\r\n")
    ann, bo, cy = read_all(data)
    assert isinstance(ann, VoterRecord) and isinstance(bo, VoterRecord) and isinstance(cy, VoterRecord)
    assert (ann.row, bo.row, cy.row) == (2, 4, 7)  # each record's first line
    assert ann.household is not None and ann.household.unit == "2"
    assert bo.fields["last_name"] == "Lee Jr" and bo.record["Last"] == "Lee\nJr\n"  # as given (line breaks as LF)
    assert ann.fields["res_street"] == "5 Elm St Apt 2"
    assert cy.external_id == "3"


def test_a_stray_quote_does_not_swallow_the_rows_after_it() -> None:
    data = (b"Voter ID,First,Last,Address,City\n"
            b'1,"Jack,Lee,1 Elm St,Durham\n'
            b"2,Bo,Lee,2 Elm St,Durham\n"
            b'3,Cy,O"Neil,3 Elm St,Durham\n'
            b"4,Di,Lee,4 Elm St,Durham\n")
    items = read_all(data)
    assert [i.row for i in items] == [2, 3, 4, 5]
    assert [v.external_id for v in voters(items)] == ["1", "2", "3", "4"]
    assert [w.code for w in voters(items)[0].warnings] == ["stray_quote"]  # kept, as before


# ------------------------------------------------------------------ rows without an address


def test_rows_without_an_address_are_reported_not_dropped() -> None:
    no_id = read_all(b"first,last,address,email\nAnn,Lee,,a@x.org\nBo,Lee,2 Elm St,\n")
    assert isinstance(no_id[0], RowIssue) and no_id[0].code == "missing_address" and no_id[0].row == 2
    assert isinstance(no_id[1], VoterRecord)
    with_id = voters(read_all(b"voter_id,first,last,address\n9,Ann,Lee,\n"))
    assert with_id[0].external_id == "9" and [w.code for w in with_id[0].warnings] == ["no_address"]


# ------------------------------------------------------------------ preview


def test_preview_shows_layout_mapping_rows_and_problems() -> None:
    vendor = generate_vendor(45, seed=8)
    broken = vendor.data + b"4199999,Ann,Lee,,,Bahama,NC,27501\r\n"
    shown = preview_file(io.BytesIO(broken), "auto")
    assert shown["layout"] == "simple_csv" and shown["mapping"]["unit"] == "Apt"
    assert shown["rows"] == 46 and shown["rows_exact"] is True
    assert len(shown["sample"]) == 20
    first = shown["sample"][0]
    assert first["row"] == 2 and first["voter_id"] == "4100000" and first["stored"] is True
    assert first["household_key"] and first["building_key"] and first["name"]
    assert shown["identity"] == "voter id column 'Voter ID'"
    assert [p["code"] for p in shown["problems"]] == ["no_address"]
    assert shown["problems"][0]["row"] == 47


def test_preview_estimates_large_files_and_reports_collisions(monkeypatch: Any) -> None:
    rows = "".join(f"P{i % 7},Lee,{i % 5} Elm St,Durham,NC,27701\n" for i in range(3000))
    data = ("first_name,last_name,address,city,state,zip\n" + rows).encode()
    monkeypatch.setattr(preview_module, "EXACT_COUNT_BYTES", 1000)
    monkeypatch.setattr(preview_module, "CHECKED_ROWS", 100)
    shown = preview_file(io.BytesIO(data), "auto")
    assert shown["rows_exact"] is False and "estimated" in shown["rows_note"]
    assert 2700 <= shown["rows"] <= 3300
    collisions = [p for p in shown["problems"] if p["code"] == "same_voter_key"]
    assert collisions and "different people" in collisions[0]["message"]
    assert "no id or date of birth" in shown["identity"]
