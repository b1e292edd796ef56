"""Bad-input corpus: malformed files and requests against the real server.

Why a corpus: real voter files, parcel exports and API clients are messy in
ways no happy-path test anticipates. Every case here is one concrete mess and
one of exactly two acceptable outcomes:

* **Reject** - a 4xx in the one error shape ``{"error": {"code", "message",
  "details"}}`` whose message tells the user what to fix; or
* **Accept** - ``202``, and the job reaches ``completed`` with item errors
  that carry row/feature numbers, and every data row accounted for (imported
  or reported: nothing silently dropped).

Never a 5xx, never a job stuck short of a terminal state (polled with a
deadline), and never a dead worker: after the corpus a normal import still
completes on the same server and its process is alive.

The server runs with ``COCOA_MAX_ITEMS_PER_JOB=50`` and
``COCOA_MAX_ITEMS_PER_GROUP=50`` (so "too many rows" is cheap; job groups
have their own tests) and an 8 MiB upload limit (room for the 5 MB single-field case, and a
9 MB upload exercises the 413). The whole corpus runs on SQLite; the cases
marked ``pg=True`` run again on PostgreSQL, where type and NUL handling differ.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import random
import re
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)

from cocoa.samples import parcels as sample_parcels
from cocoa.samples import voters as sample_voters

MAX_ITEMS = 50
MAX_UPLOAD = 8 * 1024 * 1024
JOB_DEADLINE = 45.0  # seconds for any corpus job to reach a terminal state
TERMINAL = {"completed", "failed", "cancelled"}
VOTERS = "/api/v1/voters/import"
PARCELS = "/api/v1/gis/parcels/import"
GEOCODE = "/api/v1/jobs/geocoding"
SEED_CITY = "CORPUSVILLE"
BIG_CITY = "BIGTOWN"  # more households than one geocoding job may take


# ============================================================================ the table


@dataclass(frozen=True)
class Request:
    """One HTTP request, as keyword arguments for ``httpx.Client.request``."""

    method: str
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reject:
    """A 4xx in the error shape whose message contains ``says`` (case-insensitive)."""

    status: int
    says: str
    code: str | None = None


@dataclass(frozen=True)
class Accept:
    """202; the job completes with every row accounted for.

    ``processed``: data rows / features / selected households the job must
    have looked at. ``errors``: exactly the item refs (``row 3``,
    ``feature 2``) that carry an error, with its code (warnings aside).
    ``messages``: a substring each of those refs' message must contain.
    ``imported``: voters created or updated / parcels stored / households
    matched (None: not checked). ``check``: a look at the stored rows.
    """

    processed: int
    errors: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    imported: int | None = None
    check: Callable[[sa.Engine, dict[str, Any]], None] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Request]
    expect: Reject | Accept
    pg: bool = False  # also run on PostgreSQL
    xfail: str | None = None  # a known product bug owned by someone else


# ---------------------------------------------------------------------------- builders

SIMPLE_HEADER = "first_name,last_name,address,city,state,zip"


_PEOPLE = itertools.count(1000)


def simple_rows(n: int, city: str = "Durham") -> list[str]:
    """``n`` valid simple-CSV rows for people no other case uses, so every
    case's rows are new voters whatever ran before it."""
    return [f"Pat{i},Doe{i},{i} Main St,{city},NC,27701" for i in itertools.islice(_PEOPLE, n)]


def simple_csv(rows: list[str], header: str = SIMPLE_HEADER, newline: str = "\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode("utf-8")


def voter_upload(data: bytes, filename: str = "voters.csv", **fields: str) -> Request:
    form = {"format": "auto", "mode": "full", **fields}
    return Request("POST", VOTERS, {"files": {"file": (filename, data, "text/csv")}, "data": form})


def parcel_upload(data: bytes, filename: str = "parcels.geojson", **fields: str) -> Request:
    return Request("POST", PARCELS, {"files": {"file": (filename, data, "application/octet-stream")},
                                     "data": fields})


def geocode_json(body: Any) -> Request:
    return Request("POST", GEOCODE, {"json": body})


def geocode_raw(content: bytes, content_type: str = "application/json") -> Request:
    return Request("POST", GEOCODE, {"content": content, "headers": {"Content-Type": content_type}})


def chunked_multipart(size: int) -> Iterator[bytes]:
    """A multipart body of ``size`` file bytes sent chunked (no Content-Length),
    so only the streaming count can stop it."""
    yield (b'--corpus\r\nContent-Disposition: form-data; name="file"; filename="v.csv"\r\n'
           b"Content-Type: text/csv\r\n\r\n")
    for _ in range(size // (1024 * 1024) + 1):
        yield b"x" * (1024 * 1024)
    yield b"\r\n--corpus--\r\n"


def random_bytes(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def png_bytes() -> bytes:
    """A real 1x1 PNG: signature, IHDR, IDAT, IEND."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def square(i: int) -> list[list[list[float]]]:
    """A small lon/lat square near Durham, NC, one per index."""
    x, y = -78.9 + 0.001 * i, 35.99
    return [[[x, y], [x + 0.0005, y], [x + 0.0005, y + 0.0005], [x, y + 0.0005], [x, y]]]


def feature(i: int, geometry: Any = "square") -> dict[str, Any]:
    geom = {"type": "Polygon", "coordinates": square(i)} if geometry == "square" else geometry
    return {"type": "Feature", "geometry": geom,
            "properties": {"parno": f"P{i:04d}", "siteadd": f"{100 + i} MAIN ST", "scity": "DURHAM",
                           "szip": "27701"}}


def geojson(features: list[dict[str, Any]], name: str | None = "parcels") -> bytes:
    """A FeatureCollection; ``name`` is the optional top-level member GDAL
    uses as the layer name (without it, GDAL names the layer after the file)."""
    collection = {"type": "FeatureCollection", "features": features}
    return json.dumps(collection if name is None else {"name": name, **collection}).encode()


def small_town_geojson() -> bytes:
    return sample_parcels.to_geojson(sample_parcels.generate_town(20, seed=3, households=False))


STATEPLANE_TOWN = sample_parcels.generate_town(20, seed=5, households=False)
EMPTY_FEATURES_20 = {f"feature {i + 1}": "empty_geometry"
                     for i, p in enumerate(STATEPLANE_TOWN.parcels) if p.kind == "empty"}


def stateplane_shapefile(prj: bool) -> bytes:
    return sample_parcels.to_shapefile_zip(STATEPLANE_TOWN, "EPSG:2264", prj=prj)


VRT = (b'<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>/etc/passwd</SrcDataSource>'
       b"</OGRVRTLayer></OGRVRTDataSource>")


def with_props(feat: dict[str, Any], **props: str) -> dict[str, Any]:
    return {**feat, "properties": {**feat["properties"], **props}}


def symlink_zip() -> bytes:
    """A zip whose dataset entry is a symbolic link to a server file."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo("parcels.geojson")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return out.getvalue()


def without_members(data: bytes, suffix: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        return zip_of({i.filename: src.read(i) for i in src.infolist() if not i.filename.endswith(suffix)})


def zip_bomb() -> bytes:
    """One 64 MiB entry of zeros (~64 KB deflated: 1000:1)."""
    return zip_of({"parcels.geojson": b"\x00" * (64 * 1024 * 1024)})


def many_entries_zip() -> bytes:
    entries = {f"junk/{i:05d}.txt": b"" for i in range(2_100)}
    entries["parcels.geojson"] = geojson([feature(1)])
    return zip_of(entries, zipfile.ZIP_STORED)


# ---------------------------------------------------------------------------- DB checks


def stored_names(engine: sa.Engine, job_id: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT first_name, last_name FROM voters WHERE import_job_id = :j"),
                            {"j": job_id})
        return {f"{first} {last}" for first, last in rows}


def names_include(*expected: str) -> Callable[[sa.Engine, dict[str, Any]], None]:
    """The named voters were stored exactly as spelled (decoding and formulas kept)."""
    def check(engine: sa.Engine, job: dict[str, Any]) -> None:
        names = stored_names(engine, job["id"])
        missing = [n for n in expected if n not in names]
        assert not missing, f"not stored as spelled: {missing}; stored: {sorted(names)[:20]}"
    return check


# ---------------------------------------------------------------------------- known bugs
# Each is in a file someone else owns right now; the case is xfail(strict) so
# it turns into a failure (to un-mark) the moment the owner fixes it. None open
# right now.

# ---------------------------------------------------------------------------- the corpus

MIXED = ("\n".join([SIMPLE_HEADER, "Ana,MUÑOZ,1 Oak St,Durham,NC,27701"]).encode("utf-8") + b"\n"
         + "José,NUÑEZ,2 Oak St,Durham,NC,27701\n".encode("latin-1")
         + "Zoë,BRONTË,3 Oak St,Durham,NC,27701\n".encode())

# Households the geocoder must survive: non-ASCII, formulas, HTML, unit
# spellings, a placeholder, no street. Imported when the server
# starts, so the geocoding cases have something to select.
MESSY_SEED = [
    f"Ana,Muñoz,12 Calle Ñandú Apt 3,{SEED_CITY},NC,27701",
    f'Fo,Rmula,"=HYPERLINK(""http://evil.example/x"",""click"")",{SEED_CITY},NC,27701',
    f"Un,It,500 North Main Street APARTMENT B,{SEED_CITY},NC,27701",
    f"Ha,Sh,500 N Main St # 4B,{SEED_CITY},NC,27701",
    f"Ht,Ml,<script>alert(1)</script>,{SEED_CITY},NC,27701",
    f"Ze,Ro,0 DEFAULT STREET,{SEED_CITY},NC,27701",
    f"Fr,Ac,12 1/2 Main St Unit ½,{SEED_CITY},NC,",
    f"No,Street,,{SEED_CITY},NC,27701",
]

NC_MESSY = sample_voters.generate("nc_statewide", 40, seed=11)  # Latin-1, ragged, bad dates, ...

FORMULAS = simple_csv([
    '"=HYPERLINK(""http://evil.example/x"",""click"")",Doe,1 Elm St,Durham,NC,27701',
    "+SUM(1),Roe,2 Elm St,Durham,NC,27701",
    "@cmd,Poe,3 Elm St,Durham,NC,27701",
    "-2+3,Loe,4 Elm St,Durham,NC,27701",
])

CORPUS: list[Case] = [
    # ---------------------------------------------------------------- voter files
    Case("voters_utf16_with_bom", lambda: voter_upload(simple_csv(simple_rows(3)).decode().encode("utf-16")),
         Reject(422, "UTF-16", "unsupported_encoding"), pg=True),
    Case("voters_utf16le_without_bom",
         lambda: voter_upload(simple_csv(simple_rows(3)).decode().encode("utf-16-le")),
         Reject(422, "UTF-16")),
    Case("voters_mixed_latin1_and_utf8_lines", lambda: voter_upload(MIXED),
         Accept(3, imported=3, check=names_include("Ana MUÑOZ", "José NUÑEZ", "Zoë BRONTË")), pg=True),
    Case("voters_ragged_rows",
         lambda: voter_upload(simple_csv([*simple_rows(2), "Al,Short,1 A St", *simple_rows(1),
                                          "Bo,Long,2 B St,Durham,NC,27701,extra,more"])),
         Accept(5, errors={"row 4": "ragged_row", "row 6": "ragged_row"}, imported=3), pg=True),
    Case("voters_nc_statewide_generated_mess", lambda: voter_upload(NC_MESSY.data, "ncvoter.txt"),
         Accept(NC_MESSY.rows, errors={f"row {r}": code for r, code in NC_MESSY.errors.items()}), pg=True),
    Case("voters_random_bytes", lambda: voter_upload(random_bytes(64 * 1024)), Reject(422, "header")),
    Case("voters_png", lambda: voter_upload(png_bytes(), "photo.png"), Reject(422, "header")),
    # Compressed voter files (issue 17): read as streams, refused like parcel zips when hostile.
    Case("voters_gzip", lambda: voter_upload(gzip.compress(simple_csv(simple_rows(5))), "voters.csv.gz"),
         Accept(5, imported=5)),
    Case("voters_zip_of_csv", lambda: voter_upload(zip_of({"voters.csv": simple_csv(simple_rows(5))}),
                                                   "voters.zip"),
         Accept(5, imported=5), pg=True),
    Case("voters_zip_named_member",
         lambda: voter_upload(zip_of({"README.txt": b"read me", "data/voters.csv": simple_csv(simple_rows(4))}),
                              "county.zip", member="voters.csv"),
         Accept(4, imported=4)),
    Case("voters_zip_empty", lambda: voter_upload(zip_of({}), "voters.zip"),
         Reject(422, "empty", "zip_empty"), pg=True),
    Case("voters_zip_several_members",
         lambda: voter_upload(zip_of({"a.csv": simple_csv(simple_rows(1)), "b.csv": simple_csv(simple_rows(1))}),
                              "voters.zip"),
         Reject(422, "'a.csv', 'b.csv'", "zip_several_members"), pg=True),
    Case("voters_zip_member_not_found",
         lambda: voter_upload(zip_of({"a.csv": simple_csv(simple_rows(1))}), "voters.zip", member="b.csv"),
         Reject(422, "no member 'b.csv'", "zip_member_not_found")),
    Case("voters_zip_nested_zip",
         lambda: voter_upload(zip_of({"inner.zip": zip_of({"voters.csv": simple_csv(simple_rows(2))})}),
                              "voters.zip"),
         Reject(422, "nested", "nested_archive"), pg=True),
    Case("voters_zip_bomb", lambda: voter_upload(zip_of({"voters.csv": b"\x00" * (64 * 1024 * 1024)}),
                                                  "voters.zip"),
         Reject(413, "zip bomb", "zip_bomb"), pg=True),
    Case("voters_gzip_bomb", lambda: voter_upload(gzip.compress(b"\x00" * (64 * 1024 * 1024)), "voters.gz"),
         Reject(413, "bomb", "zip_bomb")),
    Case("voters_zip_traversal", lambda: voter_upload(zip_of({"../../voters.csv": simple_csv(simple_rows(1))}),
                                                      "voters.zip"),
         Reject(422, "'..' path", "zip_unsafe_path"), pg=True),
    Case("voters_zip_symlink", lambda: voter_upload(symlink_zip(), "voters.zip"),
         Reject(422, "symbolic link", "zip_unsafe_path"), pg=True),
    Case("voters_gzip_truncated",
         lambda: voter_upload(gzip.compress(simple_csv(simple_rows(50)))[:-40], "voters.csv.gz"),
         Reject(422, "damaged", "bad_compressed_file")),
    Case("voters_member_for_plain_file", lambda: voter_upload(simple_csv(simple_rows(1)), member="x.csv"),
         Reject(422, "not a zip", "member_without_zip")),
    # A name ending .gz that is not gzip: the content decides (issue 17) - a plain CSV is
    # read as one, anything else is refused for what it is, never as a damaged archive.
    Case("voters_gz_name_plain_csv", lambda: voter_upload(simple_csv(simple_rows(3)), "voters.csv.gz"),
         Accept(3, imported=3), pg=True),
    Case("voters_gz_name_random_bytes", lambda: voter_upload(random_bytes(4096, seed=7), "voters.csv.gz"),
         Reject(422, "header"), pg=True),
    Case("voters_bzip2_still_refused", lambda: voter_upload(b"BZh91AY&SY" + bytes(64), "voters.csv.bz2"),
         Reject(422, "compressed")),
    Case("voters_empty_file", lambda: voter_upload(b""), Reject(422, "empty", "empty_file"), pg=True),
    Case("voters_blank_lines_only", lambda: voter_upload(b"\n\r\n  \n"), Reject(422, "empty", "empty_file")),
    Case("voters_header_only", lambda: voter_upload(simple_csv([])), Reject(422, "no data rows")),
    Case("voters_missing_required_columns_explicit_format",
         lambda: voter_upload(simple_csv(["Pat,1 Main St"], header="first_name,address"),
                              format="simple_csv"),
         Reject(422, "last_name", "missing_columns"), pg=True),
    Case("voters_missing_required_columns_auto",
         lambda: voter_upload(simple_csv(["Pat,1 Main St"], header="first_name,address")),
         Reject(422, "last_name")),
    # Headers that map nothing, or no address (issue 17): refused up front, never
    # imported keyed by name alone.
    Case("voters_header_maps_no_address",
         lambda: voter_upload(simple_csv(["Pat,Doe,pat@x.org"], header="First Name,Last Name,Email")),
         Reject(422, "First Name, Last Name, Email", "unmappable_file"), pg=True),
    Case("voters_header_maps_nothing",
         lambda: voter_upload(simple_csv(["a,b,c"], header="col1,col2,col3")),
         Reject(422, "mapping", "unknown_layout"), pg=True),
    Case("voters_mapping_unknown_field",
         lambda: voter_upload(simple_csv(simple_rows(2)), mapping='{"streeet": "address"}'),
         Reject(422, "'streeet'", "invalid_mapping"), pg=True),
    Case("voters_mapping_unknown_column",
         lambda: voter_upload(simple_csv(simple_rows(2)), mapping='{"street": "Road"}'),
         Reject(422, "'Road'", "unknown_column")),
    Case("voters_mapping_nested_too_deep",
         lambda: voter_upload(simple_csv(simple_rows(2)), mapping="[" * 5000),
         Reject(422, "mapping", "invalid_mapping")),
    Case("voters_mapping_unknown_saved_name",
         lambda: voter_upload(simple_csv(simple_rows(2)), mapping="no-such-vendor"),
         Reject(422, "no-such-vendor", "unknown_mapping")),
    Case("voters_mapping_for_an_official_layout",
         lambda: voter_upload(simple_csv(simple_rows(2)), format="nc_statewide", mapping='{"street": "address"}'),
         Reject(422, "fixed columns", "mapping_not_supported")),
    Case("voters_nc_layout_for_simple_file",
         lambda: voter_upload(simple_csv(simple_rows(2)), format="nc_statewide"),
         Reject(422, "ncid", "missing_columns")),
    Case("voters_5mb_single_field",
         lambda: voter_upload(simple_csv([*simple_rows(1), "Big," + "X" * (5 * 1024 * 1024)
                                          + ",9 Wide St,Durham,NC,27701", *simple_rows(1)])),
         Accept(3, imported=3), pg=True),
    Case("voters_overlong_address",
         lambda: voter_upload(simple_csv([*simple_rows(1), f"Lo,Ng,1 {'LONG ' * 90}ST,Durham,NC,27701"])),
         Accept(2, imported=2), pg=True),
    Case("voters_no_newline_at_eof",
         lambda: voter_upload(simple_csv([*simple_rows(2), "Last,Row,77 End St,Durham,NC,27701"])
                              .rstrip(b"\n")),
         Accept(3, imported=3, check=names_include("Last Row"))),
    Case("voters_nul_bytes",
         lambda: voter_upload(simple_csv(["Ni\x00ck,Nul\x00l,5 Nul St,Durham,NC,27701", *simple_rows(2)])),
         Accept(3, imported=3, check=names_include("Nick Null")), pg=True),
    Case("voters_nul_bytes_in_header",
         lambda: voter_upload(simple_csv(simple_rows(2), header="first_name\x00,last_name,address,city,"
                                                                "state,zip")),
         Accept(2, imported=2)),
    Case("voters_cr_only_line_endings",
         lambda: voter_upload(simple_csv(simple_rows(3), newline="\r")),
         Accept(3, imported=3)),
    Case("voters_spreadsheet_formulas", lambda: voter_upload(FORMULAS),
         Accept(4, imported=4, check=names_include('=HYPERLINK("http://evil.example/x","click") Doe',
                                                   "+SUM(1) Roe", "@cmd Poe", "-2+3 Loe"))),
    Case("voters_unmatched_quote",
         lambda: voter_upload(simple_csv([*simple_rows(1), '"Jack,Quote,1 Q St,Durham,NC,27701',
                                          'Ja"ne,Mid,2 Q St,Durham,NC,27701', "After,Quote,3 Q St,Durham,NC,27701",
                                          *simple_rows(1)])),
         Accept(5, imported=5, check=names_include('"Jack Quote', 'Ja"ne Mid', "After Quote")), pg=True),
    Case("voters_more_rows_than_item_limit",
         lambda: voter_upload(simple_csv(simple_rows(MAX_ITEMS + 1))),
         Reject(422, f"at most {MAX_ITEMS}", "too_many_items"), pg=True),
    Case("voters_upload_over_size_limit",
         lambda: voter_upload(simple_csv(simple_rows(1)) + b"#" * (MAX_UPLOAD + 1024 * 1024)),
         Reject(413, "larger than the limit", "file_too_large"), pg=True),
    Case("voters_upload_over_size_limit_chunked", lambda: Request("POST", VOTERS, {
        "content": chunked_multipart(MAX_UPLOAD + 2 * 1024 * 1024),
        "headers": {"Content-Type": "multipart/form-data; boundary=corpus"}}),
         Reject(413, "larger than the limit", "file_too_large")),
    Case("voters_two_files",
         lambda: Request("POST", VOTERS, {"files": [("file", ("a.csv", simple_csv(simple_rows(2)), "text/csv")),
                                                    ("file", ("b.csv", simple_csv(simple_rows(2)), "text/csv"))]}),
         Reject(422, "one file per import", "too_many_files")),
    Case("voters_format_sent_as_file",
         lambda: Request("POST", VOTERS, {"files": [("file", ("a.csv", simple_csv(simple_rows(2)), "text/csv")),
                                                    ("format", ("format.txt", b"auto", "text/plain"))]}),
         Reject(422, "'format' must be text", "invalid_field")),
    Case("voters_misspelt_field", lambda: voter_upload(simple_csv(simple_rows(2)), fromat="nc_statewide"),
         Reject(422, "Unknown multipart field(s) 'fromat'", "unknown_field"), pg=True),
    Case("voters_too_many_fields",
         lambda: voter_upload(simple_csv(simple_rows(2)), **{f"x{i}": "1" for i in range(40)}),
         Reject(400, "Too many fields")),
    Case("voters_hostile_filename",
         lambda: voter_upload(simple_csv(simple_rows(2)), "../../../etc/passwd\x00.csv"),
         Accept(2, imported=2), pg=True),
    Case("voters_unknown_format", lambda: voter_upload(simple_csv(simple_rows(2)), format="texas_2019"),
         Reject(422, "Unknown voter file format", "unknown_format")),
    Case("voters_unknown_mode", lambda: voter_upload(simple_csv(simple_rows(2)), mode="partial"),
         Reject(422, "mode must be one of", "invalid_mode")),
    Case("voters_missing_file_field",
         lambda: Request("POST", VOTERS, {"files": {"other": ("x.csv", b"a", "text/csv")},
                                          "data": {"format": "auto"}}),
         Reject(400, "multipart field 'file'", "file_required")),
    Case("voters_file_sent_as_text_field",
         lambda: Request("POST", VOTERS, {"files": {"format": (None, "auto")},
                                          "data": {"file": SIMPLE_HEADER}}),
         Reject(400, "must be a file part", "file_required")),
    Case("voters_json_body_not_multipart",
         lambda: Request("POST", VOTERS, {"json": {"file": SIMPLE_HEADER, "format": "auto"}}),
         Reject(415, "multipart/form-data", "unsupported_media_type"), pg=True),
    Case("voters_raw_csv_content_type",
         lambda: Request("POST", VOTERS, {"content": simple_csv(simple_rows(2)),
                                          "headers": {"Content-Type": "text/csv"}}),
         Reject(415, "multipart/form-data")),
    Case("voters_multipart_without_boundary",
         lambda: Request("POST", VOTERS, {"content": b"--x\r\n\r\n",
                                          "headers": {"Content-Type": "multipart/form-data"}}),
         Reject(400, "multipart")),
    # ---------------------------------------------------------------- parcel files
    Case("parcels_random_bytes", lambda: parcel_upload(random_bytes(16 * 1024), "parcels.bin"),
         Reject(415, "expected GeoJSON"), pg=True),
    Case("parcels_png", lambda: parcel_upload(png_bytes(), "map.png"), Reject(415, "expected GeoJSON")),
    Case("parcels_gzip", lambda: parcel_upload(gzip.compress(small_town_geojson()), "parcels.geojson.gz"),
         Reject(415, "expected GeoJSON")),
    Case("parcels_empty_file", lambda: parcel_upload(b"", "parcels.geojson"), Reject(422, "empty")),
    Case("parcels_voter_file_sent_as_parcels", lambda: parcel_upload(simple_csv(simple_rows(3)),
                                                                     "voters.csv"),
         Reject(422, "no geometry column", "csv_no_geometry")),
    Case("parcels_zip_bomb_ratio", lambda: parcel_upload(zip_bomb(), "parcels.zip"),
         Reject(413, "zip bomb", "zip_bomb"), pg=True),
    Case("parcels_zip_many_entries", lambda: parcel_upload(many_entries_zip(), "parcels.zip"),
         Reject(413, "entries", "zip_too_many_entries")),
    Case("parcels_zip_dotdot_path",
         lambda: parcel_upload(zip_of({"../../evil/parcels.geojson": geojson([feature(1)])}), "p.zip"),
         Reject(422, "'..' path", "zip_unsafe_path"), pg=True),
    Case("parcels_zip_absolute_path",
         lambda: parcel_upload(zip_of({"/etc/parcels.geojson": geojson([feature(1)])}), "p.zip"),
         Reject(422, "absolute", "zip_unsafe_path")),
    Case("parcels_zip_damaged", lambda: parcel_upload(zip_of({"a.geojson": b"{}"})[:40], "p.zip"),
         Reject(422, "zip")),
    Case("parcels_shapefile_without_prj_in_state_plane_feet",
         lambda: parcel_upload(stateplane_shapefile(prj=False), "parcels.zip"),
         Reject(422, "source_crs", "missing_crs"), pg=True),
    Case("parcels_shapefile_without_prj_with_source_crs",
         lambda: parcel_upload(stateplane_shapefile(prj=False), "parcels.zip", source_crs="EPSG:2264"),
         Accept(20, errors=EMPTY_FEATURES_20)),
    Case("parcels_shp_sent_alone", lambda: parcel_upload(b"\x00\x00\x27\x0a" + b"\x00" * 96, "parcels.shp"),
         Reject(415, "zip the .shp")),
    Case("parcels_source_crs_unknown_epsg",
         lambda: parcel_upload(small_town_geojson(), source_crs="EPSG:999999"),
         Reject(422, "EPSG:2264", "invalid_source_crs"), pg=True),
    Case("parcels_source_crs_banana", lambda: parcel_upload(small_town_geojson(), source_crs="banana"),
         Reject(422, "'banana'", "invalid_source_crs")),
    Case("parcels_geojson_invalid_json",
         lambda: parcel_upload(b'{"type": "FeatureCollection", "features": [{"type": "Feat'),
         Reject(422, "Unterminated string"), pg=True),
    Case("parcels_geojson_not_a_feature_collection",
         lambda: parcel_upload(json.dumps({"parcels": [1, 2, 3]}).encode()),
         Reject(422, "FeatureCollection")),
    Case("parcels_geojson_bare_geometry",
         lambda: parcel_upload(json.dumps({"type": "Polygon", "coordinates": square(1)}).encode()),
         Reject(422, "parcel columns were not recognised")),
    Case("parcels_geojson_features_without_geometry",
         lambda: parcel_upload(geojson([feature(1), feature(2, None), feature(3),
                                        feature(4, {"type": "Point", "coordinates": [-78.9, 35.9]})])),
         Accept(4, errors={"feature 2": "empty_geometry", "feature 4": "not_polygon"}, imported=2), pg=True),
    Case("parcels_geojson_without_name_member",
         lambda: parcel_upload(geojson([feature(1), feature(2)], name=None)),
         Accept(2, imported=2), pg=True),
    Case("parcels_geojson_nul_in_properties",
         lambda: parcel_upload(geojson([{**feature(1), "properties": {
             **feature(1)["properties"], "ownname": "NUL\x00OWNER"}}, feature(2)])),
         Accept(2, imported=2), pg=True),
    Case("parcels_csv_no_geometry_column",
         lambda: parcel_upload(b"parno,siteadd\nP1,1 MAIN ST\n", "parcels.csv"),
         Reject(422, "no geometry column", "csv_no_geometry")),
    Case("parcels_csv_rows_shorter_than_geometry_column",
         lambda: parcel_upload(b"parno,siteadd,WKT\nP1,1 MAIN ST\nP2,2 MAIN ST\n", "parcels.csv"),
         Accept(2, errors={"feature 1": "empty_geometry", "feature 2": "empty_geometry"}, imported=0),
         pg=True),
    Case("parcels_csv_header_only", lambda: parcel_upload(b"parno,siteadd,WKT\n\n", "parcels.csv"),
         Reject(422, "no features", "empty_file")),
    Case("parcels_geojson_empty_feature_collection", lambda: parcel_upload(geojson([])),
         Reject(422, "no features", "empty_file")),
    Case("parcels_coordinates_not_on_earth",
         lambda: parcel_upload(geojson([feature(1), feature(2, {"type": "Polygon", "coordinates": [
             [[2e6, 8e5], [2e6 + 10, 8e5], [2e6 + 10, 8e5 + 10], [2e6, 8e5]]]})])),
         Accept(2, errors={"feature 2": "out_of_range"}, imported=1)),
    Case("parcels_missing_and_overlong_apn",
         lambda: parcel_upload(geojson([feature(1), with_props(feature(2), parno="A" * 300),
                                        with_props(feature(3), parno="")])),
         Accept(3, errors={"feature 2": "apn_too_long", "feature 3": "missing_apn"}, imported=1), pg=True),
    Case("parcels_zip_symlink_entry", lambda: parcel_upload(symlink_zip(), "parcels.zip"),
         Reject(422, "symbolic link", "zip_unsafe_path")),
    Case("parcels_zip_vrt_disguised_as_geojson",
         lambda: parcel_upload(zip_of({"parcels.geojson": VRT}), "parcels.zip"),
         Reject(415, "not the geojson file its name says")),
    Case("parcels_zip_shapefile_without_dbf",
         lambda: parcel_upload(without_members(stateplane_shapefile(prj=True), ".dbf"), "parcels.zip"),
         Reject(422, "missing .dbf", "shapefile_incomplete")),
    Case("parcels_zip_without_dataset", lambda: parcel_upload(zip_of({"readme.txt": b"hi"}), "parcels.zip"),
         Reject(422, "no parcel dataset", "zip_no_dataset")),
    Case("parcels_csv_unparsable_wkt",
         lambda: parcel_upload(b"parno,siteadd,WKT\nP1,1 MAIN ST,POLYGON((1 2\nP2,2 MAIN ST,"
                               b"\"POLYGON((-78.9 35.9,-78.89 35.9,-78.89 35.91,-78.9 35.9))\"\n",
                               "parcels.csv"),
         Accept(2, errors={"feature 1": "empty_geometry"}, imported=1)),
    Case("parcels_csv_unparsable_wkt_message",
         lambda: parcel_upload(b"parno,siteadd,WKT\nP1,1 MAIN ST,POLYGON((1 2\n", "parcels.csv"),
         Accept(1, errors={"feature 1": "empty_geometry"}, messages={"feature 1": "WKT"}, imported=0)),
    Case("parcels_unknown_fields_without_mapping",
         lambda: parcel_upload(json.dumps({"type": "FeatureCollection", "features": [
             {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square(1)},
              "properties": {"foo": 1, "bar": "x"}}]}).encode()),
         Reject(422, "apn_field", "unknown_parcel_fields")),
    Case("parcels_mapping_unknown_keys",
         lambda: parcel_upload(small_town_geojson(), mapping=json.dumps({"apn": "parno", "colour": "x"})),
         Reject(422, "Unknown mapping keys", "invalid_mapping"), pg=True),
    Case("parcels_mapping_names_missing_column",
         lambda: parcel_upload(small_town_geojson(),
                               mapping=json.dumps({"apn_field": "NOPE", "address_field": "siteadd"})),
         Reject(422, "NOPE", "mapping_field_missing")),
    Case("parcels_mapping_not_json", lambda: parcel_upload(small_town_geojson(), mapping="{apn_field: parno"),
         Reject(422, "mapping must be a JSON object")),
    Case("parcels_mapping_json_array", lambda: parcel_upload(small_town_geojson(), mapping="[1, 2]"),
         Reject(422, "mapping must be a JSON object")),
    Case("parcels_mapping_non_string_values",
         lambda: parcel_upload(small_town_geojson(), mapping=json.dumps({"apn_field": 7})),
         Reject(422, "column names")),
    Case("parcels_more_features_than_item_limit",
         lambda: parcel_upload(geojson([feature(i) for i in range(MAX_ITEMS + 5)])),
         Reject(422, f"at most {MAX_ITEMS}", "too_many_items"), pg=True),
    Case("parcels_unknown_format_name", lambda: parcel_upload(small_town_geojson(), format="kml"),
         Reject(422, "Unknown format 'kml'")),
    Case("parcels_json_body_not_multipart",
         lambda: Request("POST", PARCELS, {"json": {"file": "x"}}),
         Reject(415, "multipart/form-data")),
    Case("parcels_missing_file_field",
         lambda: Request("POST", PARCELS, {"files": {"source_crs": (None, "EPSG:4326")}}),
         Reject(400, "multipart field 'file'", "file_required")),
    # ---------------------------------------------------------------- geocoding requests
    Case("geocode_messy_households_local",
         lambda: geocode_json({"city": SEED_CITY.lower(), "only_missing": False, "provider": "local"}),
         Accept(17), pg=True),  # 10 plain + 7 messy households (the row without a street has none)
    Case("geocode_selection_over_item_limit", lambda: geocode_json({"city": BIG_CITY}),
         Reject(422, f"more than the limit of {MAX_ITEMS}", "too_many_items"), pg=True),
    Case("geocode_selection_over_item_limit_with_limit", lambda: geocode_json({"city": BIG_CITY, "limit": 7}),
         Accept(7)),
    Case("geocode_invalid_json_body", lambda: geocode_raw(b'{"city": "Durham",'),
         Reject(400, "not valid JSON", "invalid_body"), pg=True),  # cannot be read: 400
    Case("geocode_body_not_utf8", lambda: geocode_raw(b'{"city": "\xff\xfe"}'), Reject(400, "UTF-8")),
    Case("geocode_empty_body", lambda: geocode_raw(b""), Reject(400, "body", "invalid_body")),
    Case("geocode_body_is_a_list", lambda: geocode_json([{"city": "Durham"}]), Reject(422, "Invalid request")),
    Case("geocode_form_body", lambda: geocode_raw(b"city=Durham", "application/x-www-form-urlencoded"),
         Reject(415, "Content-Type: application/json", "unsupported_media_type")),
    Case("geocode_negative_limit", lambda: geocode_json({"limit": -5}), Reject(422, "limit"), pg=True),
    Case("geocode_zero_limit", lambda: geocode_json({"limit": 0}), Reject(422, "limit")),
    Case("geocode_huge_limit", lambda: geocode_json({"limit": 10**15}),
         Reject(422, f"limit must be a whole number from 1 to {MAX_ITEMS}", "invalid_limit")),
    Case("geocode_limit_above_item_limit", lambda: geocode_json({"limit": MAX_ITEMS + 1}),
         Reject(422, f"1 to {MAX_ITEMS}", "invalid_limit"), pg=True),
    Case("geocode_limit_as_word", lambda: geocode_json({"limit": "ten"}), Reject(422, "limit")),
    Case("geocode_limit_as_numeric_string", lambda: geocode_json({"limit": "5", "city": SEED_CITY}),
         Reject(422, "limit: Input should be a valid integer", "validation_error"), pg=True),
    Case("geocode_limit_as_bool", lambda: geocode_json({"limit": True, "city": SEED_CITY}),
         Reject(422, "limit: Input should be a valid integer")),
    Case("geocode_only_missing_as_string", lambda: geocode_json({"only_missing": "false", "city": SEED_CITY}),
         Reject(422, "only_missing: Input should be a valid boolean")),
    Case("geocode_limit_as_float", lambda: geocode_json({"limit": 2.5}), Reject(422, "limit")),
    Case("geocode_unknown_provider", lambda: geocode_json({"provider": "google"}),
         Reject(422, "Unknown geocoding provider 'google'", "unknown_provider"), pg=True),
    Case("geocode_repeated_provider", lambda: geocode_json({"provider": "local,census,local"}),
         Reject(422, "names a provider twice")),
    Case("geocode_empty_provider_in_chain", lambda: geocode_json({"provider": "local,"}),
         Reject(422, "provider")),
    Case("geocode_filters_match_nothing", lambda: geocode_json({"city": "Atlantis", "provider": "local"}),
         Reject(422, "No households match", "empty_selection"), pg=True),
    Case("geocode_unknown_filter", lambda: geocode_json({"town": SEED_CITY}), Reject(422, "town")),
    Case("geocode_filters_nested_object", lambda: geocode_json({"filters": {"city": SEED_CITY}}),
         Reject(422, "filters")),
    Case("geocode_filter_wrong_type", lambda: geocode_json({"city": ["Durham"]}), Reject(422, "city")),
    Case("geocode_nul_in_filter", lambda: geocode_json({"city": "Dur\x00ham"}),
         Reject(422, "city: must not contain NUL characters"), pg=True),
    Case("geocode_only_missing_not_bool", lambda: geocode_json({"only_missing": "perhaps"}),
         Reject(422, "only_missing")),
    Case("geocode_wrong_content_type", lambda: geocode_raw(b'{"city": "Durham"}', "text/plain"),
         Reject(415, "Content-Type: application/json", "unsupported_media_type"), pg=True),
    Case("geocode_no_content_type",
         lambda: Request("POST", GEOCODE, {"content": b'{"city": "Durham"}'}),
         Reject(415, "no content type", "unsupported_media_type")),
    Case("geocode_nominatim_without_user_agent", lambda: geocode_json({"provider": "nominatim"}),
         Reject(422, "User-Agent", "provider_not_configured")),
]


# ============================================================================ servers




@dataclass
class Corpus:
    """A live server plus a database engine for the row-level checks."""

    server: Any
    engine: sa.Engine

    def client(self) -> httpx.Client:
        client: httpx.Client = self.server.client()
        client.timeout = httpx.Timeout(60)
        return client


def _serve(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    data_dir = tmp_path_factory.mktemp(f"badinput_{backend}")
    with root.module_database(backend, data_dir) as url:
        server = root.start_live_server(url, data_dir, COCOA_MAX_ITEMS_PER_JOB=str(MAX_ITEMS),
                                        COCOA_MAX_ITEMS_PER_GROUP=str(MAX_ITEMS),
                                        COCOA_MAX_UPLOAD_BYTES=str(MAX_UPLOAD))
        engine = sa.create_engine(url)
        try:
            corpus = Corpus(server, engine)
            with corpus.client() as client:  # households for the geocoding cases
                for rows in ([*simple_rows(10, SEED_CITY), *MESSY_SEED], simple_rows(40, BIG_CITY),
                             simple_rows(15, BIG_CITY)):
                    job = finish(client, start(client, voter_upload(simple_csv(rows))))
                    assert job["status"] == "completed", job
            yield corpus
        finally:
            engine.dispose()
            root.stop_live_server(server)


@pytest.fixture(scope="module")
def sqlite_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    yield from _serve("sqlite", tmp_path_factory)


@pytest.fixture(scope="module")
def pg_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    yield from _serve("postgresql", tmp_path_factory)


# ============================================================================ running a case


def send(client: httpx.Client, request: Request) -> httpx.Response:
    return client.request(request.method, request.path, **request.kwargs)


def start(client: httpx.Client, request: Request) -> str:
    response = send(client, request)
    assert response.status_code == 202, f"{response.status_code} {response.text[:2000]}"
    body = response.json()
    assert response.headers["Location"] == f"/api/v1/jobs/{body['job_id']}"
    return str(body["job_id"])


def finish(client: httpx.Client, job_id: str, deadline: float = JOB_DEADLINE) -> dict[str, Any]:
    """Poll until the job is terminal; a job still running at the deadline is stuck."""
    until = time.monotonic() + deadline
    while True:
        response = client.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in TERMINAL:
            return job
        assert time.monotonic() < until, f"job stuck in {job['status']} after {deadline}s: {job}"
        time.sleep(0.05)  # poll interval, bounded by the deadline above


def all_errors(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/jobs/{job_id}/errors", params={"limit": 200})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["errors"]), "more errors than one page: keep cases small"
    errors: list[dict[str, Any]] = body["errors"]
    return errors


def check_reject(response: httpx.Response, expect: Reject) -> None:
    assert response.status_code == expect.status, f"{response.status_code} {response.text[:2000]}"
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and isinstance(error["code"], str), error
    assert expect.says.lower() in error["message"].lower(), \
        f"message does not say {expect.says!r}: {error['message']!r}"
    if expect.code is not None:
        assert error["code"] == expect.code, error


def check_accept(corpus: Corpus, client: httpx.Client, response: httpx.Response, expect: Accept) -> None:
    assert response.status_code == 202, f"{response.status_code} {response.text[:2000]}"
    job = finish(client, response.json()["job_id"])
    assert job["status"] == "completed", f"{job['status']}: {job['error']}"
    progress, result = job["progress"], job["result"]
    assert progress["processed"] >= expect.processed, progress
    errors = all_errors(client, job["id"])
    for error in errors:  # every item error names its row or feature
        assert re.fullmatch(r"(row|feature) \d+", error["item"]), error
        assert error["message"], error
    fatal = {e["item"]: e["code"] for e in errors if e["severity"] == "error"}
    assert fatal == expect.errors, f"item errors {fatal} != expected {expect.errors}"
    said = {e["item"]: e["message"] for e in errors if e["severity"] == "error"}
    for ref, text in expect.messages.items():
        assert text.lower() in said[ref].lower(), f"{ref}: message does not say {text!r}: {said[ref]!r}"
    if job["type"] == "geocode_households":
        assert progress["processed"] == progress["total"] == expect.processed, progress
        outcomes = sum(result.get(k, 0) for k in ("matched", "no_match", "tie", "errors"))
        assert outcomes == progress["processed"], f"households without an outcome: {result}"
        imported = result.get("matched", 0)
    elif job["type"] == "import_voters":
        assert progress["processed"] == expect.processed, progress
        assert progress["failed"] == len(fatal), progress
        accounted = sum(result.get(k, 0) for k in ("voters_created", "voters_updated", "voters_unchanged",
                                                    "voters_skipped", "rows_superseded"))
        assert accounted == progress["processed"] - progress["failed"], f"rows dropped: {result}"
        imported = result.get("voters_created", 0) + result.get("voters_updated", 0)
    else:
        assert result.get("item_errors", 0) == len(fatal), result
        imported = result.get("parcels_imported", 0) + result.get("parcels_updated", 0)
        replaced = sum(e["code"] == "duplicate_apn" for e in errors)  # last one in the file wins
        assert imported + replaced + len(fatal) == expect.processed, f"features dropped: {result}"
    if expect.imported is not None:
        assert imported == expect.imported, result
    if expect.check is not None:
        expect.check(corpus.engine, job)


def server_log(corpus: Corpus) -> bytes:
    return bytes(corpus.server.log_path.read_bytes())


def assert_no_crash_logged(log: bytes) -> None:
    """Nothing reached the 500 handler or escaped a worker thread.

    Checked per case on the log written since the case began, so a known
    (xfail) crash does not hide, or get blamed on, the cases after it."""
    text = log.decode(errors="replace")
    assert "unhandled error" not in text and "Traceback" not in text, text[-5000:]


def run_case(corpus: Corpus, case: Case) -> None:
    assert corpus.server.process.poll() is None, "the server died before this case"
    log_start = len(server_log(corpus))
    with corpus.client() as client:
        response = send(client, case.build())
        assert response.status_code < 500, f"{response.status_code} {response.text[:2000]}"
        if isinstance(case.expect, Reject):
            check_reject(response, case.expect)
        else:
            check_accept(corpus, client, response, case.expect)
    assert corpus.server.process.poll() is None, "the server died during this case"
    assert_no_crash_logged(server_log(corpus)[log_start:])


def params(cases: list[Case]) -> list[Any]:
    return [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)]
                         if c.xfail else []) for c in cases]


def survives(corpus: Corpus) -> None:
    """The same server still does normal work: a small import completes and
    the geocoding worker runs, and nothing went to the 500 handler."""
    assert corpus.server.process.poll() is None, "the server process died"
    log_start = len(server_log(corpus))
    with corpus.client() as client:
        assert client.get("/readyz").status_code == 200
        job = finish(client, start(client, voter_upload(simple_csv(simple_rows(5, "AFTERTOWN")))))
        assert job["status"] == "completed" and job["progress"]["processed"] == 5, job
        assert job["result"]["voters_created"] == 5, job
        geo = finish(client, start(client, geocode_json({"city": "AFTERTOWN", "provider": "local"})))
        assert geo["status"] == "completed" and geo["progress"]["processed"] == 5, geo
    assert_no_crash_logged(server_log(corpus)[log_start:])


# ============================================================================ tests

PG_CASES = [c for c in CORPUS if c.pg]
assert len(CORPUS) >= 35 and len(PG_CASES) >= 10


@pytest.mark.parametrize("case", params(CORPUS))
def test_bad_input_sqlite(sqlite_corpus: Corpus, case: Case) -> None:
    run_case(sqlite_corpus, case)


def test_server_survives_corpus_sqlite(sqlite_corpus: Corpus) -> None:
    survives(sqlite_corpus)


@pytest.mark.postgres
@pytest.mark.parametrize("case", params(PG_CASES))
def test_bad_input_postgresql(pg_corpus: Corpus, case: Case) -> None:
    run_case(pg_corpus, case)


@pytest.mark.postgres
def test_server_survives_corpus_postgresql(pg_corpus: Corpus) -> None:
    survives(pg_corpus)
