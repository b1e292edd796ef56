"""Parcel file reading: formats, CRS, geometry repair, mapping, zip safety.

Every file is generated here with pyogrio (directly or through the sample
town); nothing binary is committed.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import shapely
from pyproj import Transformer

from cocoa.domain import parcel_files as pf
from cocoa.domain.errors import InputError, Problem
from cocoa.samples import parcels as town_mod
from cocoa.samples.parcels import generate_town

FEET = 0.3048006096012192  # one US survey foot in metres


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def shapefile_zip(geoms: list[Any], fields: dict[str, list[Any]], crs: str | None,
                  names: dict[str, str] | None = None) -> bytes:
    """A zipped shapefile straight from pyogrio; ``names`` renames entries."""
    with tempfile.TemporaryDirectory() as tmp:
        pyogrio.raw.write(
            os.path.join(tmp, "p.shp"), np.array(shapely.to_wkb(geoms), dtype=object),
            [np.array(v, dtype=object) for v in fields.values()], list(fields),
            driver="ESRI Shapefile", geometry_type="Polygon", crs=crs)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(os.listdir(tmp)):
                with open(os.path.join(tmp, name), "rb") as handle:  # ZipInfo keeps the name as is
                    zf.writestr(zipfile.ZipInfo((names or {}).get(name, name)), handle.read())
        return out.getvalue()


def read_all(data: bytes, **kwargs: Any) -> tuple[pf.ParcelFileInfo, pf.FeatureSlice]:
    info = pf.inspect_parcel_file(data, **kwargs)
    with pf.stage_upload(data, info.located) as staged:
        return info, pf.read_slice(staged, info, 0, info.feature_count)


# ------------------------------------------------------------------ formats


WRITERS = {
    "geojson": town_mod.to_geojson, "shapefile": town_mod.to_shapefile_zip,
    "gpkg": town_mod.to_gpkg, "filegdb": town_mod.to_filegdb_zip, "csv": town_mod.to_csv,
}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_inspect_detects_format_crs_mapping_and_count(fmt: str) -> None:
    town = generate_town(80, seed=1, households=False)
    data = WRITERS[fmt](town)
    # a misleading client file name changes nothing: content decides
    info = pf.inspect_parcel_file(data, filename="parcels.txt")
    assert info.format == fmt
    assert info.feature_count == len(town.parcels)
    assert info.preset == "nc_onemap" and info.mapping.apn_field == "parno"
    assert info.crs == ("EPSG:2264" if fmt == "shapefile" else "EPSG:4326")
    assert info.crs_origin == ("assumed" if fmt == "csv" else "file")


def test_slices_cover_the_file_exactly_once() -> None:
    town = generate_town(50, seed=2, households=False)
    data = town_mod.to_gpkg(town)
    info = pf.inspect_parcel_file(data)
    with pf.StagedFile(data, ".gpkg") as staged:
        apns = [a["parno"] for start in range(0, 50, 7)
                for a in pf.read_slice(staged, info, start, 7).attributes]
        assert len(pf.read_slice(staged, info, 50, 7)) == 0
    assert apns == [p.apn for p in town.parcels]


def test_staged_copy_is_removed_and_named_by_the_server() -> None:
    with pf.StagedFile(b"{}", ".geojson") as staged:
        path = staged.path
        assert os.path.basename(path).startswith("cocoa-parcels-") and os.path.exists(path)
    assert not os.path.exists(path)


def test_csv_with_geojson_geometry_column_and_cp1252_text() -> None:
    text = ('PARNO,SITEADD,SCITY,SZIP,geometry\r\n'
            '1,"12 MUÑOZ ST",X,27500,"{""type"": ""Polygon"", ""coordinates"": '
            '[[[-79,35],[-78.999,35],[-78.999,35.001],[-79,35]]]}"\r\n\r\n'
            '2,"14 MAIN ST",X,27500,"POLYGON ((-79 35, -78.9 35, -78.9 35.1, -79 35))"\r\n')
    info, features = read_all(text.encode("cp1252"))
    assert info.format == "csv" and info.feature_count == 2
    assert info.mapping.apn_field == "PARNO" and info.mapping.address_field == "SITEADD"
    assert features.attributes[0]["SITEADD"] == "12 MUÑOZ ST"
    assert [g.geom_type for g in features.geometries] == ["Polygon", "Polygon"]


# ------------------------------------------------------------------ CRS


def test_state_plane_feet_to_wgs84_within_a_metre_on_known_points() -> None:
    # NAD83 / North Carolina (ftUS): false easting 2,000,000 ftUS at 79°W,
    # latitude of origin 33°45'N. A parcel cornered on the projection origin.
    origin = shapely.box(2_000_000, 0, 2_000_100, 100)
    raleigh = shapely.box(2_105_900, 737_000, 2_106_000, 737_100)
    data = shapefile_zip([origin, raleigh], {"parno": ["A", "B"], "siteadd": ["1 A ST", "2 B ST"]},
                         "EPSG:2264")
    info, features = read_all(data)
    assert info.crs == "EPSG:2264"
    prepared = pf.prepare_geometries(features.geometries, pf.wgs84_transformer(info.crs))
    source = shapely.get_coordinates(features.geometries[0]).tolist()
    lon, lat = shapely.get_coordinates(prepared.geometries[0])[source.index([2_000_000, 0])]
    assert haversine_m(lon, lat, -79.0, 33.75) < 1.0
    # independent check: an explicitly built PROJ pipeline, metres not feet
    lcc = Transformer.from_pipeline(
        "+proj=pipeline +step +inv +proj=lcc +lat_0=33.75 +lon_0=-79 +lat_1=36.1666666666667 "
        "+lat_2=34.3333333333333 +x_0=609601.22 +y_0=0 +ellps=GRS80 +units=m")
    assert shapely.equals(features.geometries[1], raleigh)
    for source, got in zip(shapely.get_coordinates(features.geometries[1]),
                           shapely.get_coordinates(prepared.geometries[1]), strict=True):
        ex, ey = lcc.transform(source[0] * FEET, source[1] * FEET)  # metres in, degrees out
        assert haversine_m(got[0], got[1], ex, ey) < 1.0


def test_missing_crs_with_projected_coordinates_is_refused() -> None:
    town = generate_town(20, households=False)
    data = town_mod.to_shapefile_zip(town, prj=False)
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(data)
    assert info.value.code == "missing_crs" and info.value.problem is Problem.UNPROCESSABLE
    assert "source_crs" in info.value.message and "EPSG:2264" in info.value.message
    accepted = pf.inspect_parcel_file(data, source_crs="epsg:2264")
    assert (accepted.crs, accepted.crs_origin) == ("EPSG:2264", "param")


def test_missing_crs_with_lonlat_coordinates_is_taken_as_wgs84() -> None:
    town = generate_town(20, households=False)
    info = pf.inspect_parcel_file(town_mod.to_shapefile_zip(town, crs="EPSG:4326", prj=False))
    assert (info.crs, info.crs_origin) == ("EPSG:4326", "assumed")


def test_wrong_source_crs_gives_item_errors_not_garbage() -> None:
    geoms = np.array([shapely.box(2_000_000, 500_000, 2_000_100, 500_100)], dtype=object)
    prepared = pf.prepare_geometries(geoms, None)  # feet taken as degrees
    assert prepared.problems[0] is not None and prepared.problems[0][0] == "out_of_range"


# ------------------------------------------------------------------ geometry


def test_invalid_empty_and_multi_geometries() -> None:
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    multi = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)])
    collection = shapely.GeometryCollection([shapely.box(0, 0, 1, 1),
                                             shapely.LineString([(5, 5), (6, 6)])])
    empty_collection = shapely.GeometryCollection()
    spike = shapely.Polygon([(0, 0), (1, 0), (1, 0), (0, 0)])  # zero area
    geoms = np.array([bowtie, multi, shapely.Polygon(), None, collection,
                      shapely.LineString([(0, 0), (1, 1)]), spike, empty_collection], dtype=object)
    out = pf.prepare_geometries(geoms, None)
    codes = [p[0] if p else None for p in out.problems]
    assert codes == [None, None, "empty_geometry", "empty_geometry", None, "not_polygon",
                     "unrepairable_geometry", "empty_geometry"]
    assert out.repaired.tolist() == [True, False, False, False, False, False, False, False]
    fixed = out.geometries[0]
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon" and fixed.area == pytest.approx(0.5)
    assert out.geometries[1].equals(multi)
    assert out.geometries[4].equals(shapely.box(0, 0, 1, 1))


# ------------------------------------------------------------------ mapping


def test_presets_are_recognised_case_insensitively() -> None:
    preset, mapping = pf.resolve_mapping(["OBJECTID", "PARNO", "SiteAdd", "SCITY", "SZIP"], None)
    assert preset == "nc_onemap"
    assert (mapping.apn_field, mapping.address_field, mapping.city_field, mapping.zip_field,
            mapping.state) == ("PARNO", "SiteAdd", "SCITY", "SZIP", "NC")
    preset, mapping = pf.resolve_mapping(["ParcelNumb", "Address", "scity", "szip"], None)
    assert preset == "regrid" and mapping.apn_field == "ParcelNumb"
    preset, mapping = pf.resolve_mapping(["parno", "saddno", "saddstr", "saddsttyp"], None)
    assert preset == "nc_onemap" and mapping.address_field is None
    assert mapping.street_field == "saddstr"


def test_unknown_fields_get_a_422_naming_candidates() -> None:
    with pytest.raises(InputError) as info:
        pf.resolve_mapping(["OBJECTID", "PIN14", "SITE_ADDR", "OWNER"], None)
    err = info.value
    assert err.problem is Problem.UNPROCESSABLE and err.code == "unknown_parcel_fields"
    assert err.details["apn_candidates"] == ["PIN14"]
    assert err.details["address_candidates"] == ["SITE_ADDR"]
    assert "apn_field" in err.message and "address_field" in err.message
    with pytest.raises(InputError) as info:
        pf.resolve_mapping(["PIN14", "SITE_ADDR"], {"apn_field": "PIN", "address_field": "site_addr"})
    assert info.value.problem is Problem.UNPROCESSABLE and "apn_field='PIN'" in info.value.message
    _, mapping = pf.resolve_mapping(["PIN14", "SITE_ADDR"],
                                    {"apn_field": "pin14", "address_field": "site_addr"})
    assert (mapping.apn_field, mapping.address_field) == ("PIN14", "SITE_ADDR")


def test_explicit_keys_overlay_a_recognised_preset() -> None:
    preset, mapping = pf.resolve_mapping(["parcelnumb", "address", "scity", "szip"],
                                         {"state": "nc"})
    assert preset == "regrid" and (mapping.apn_field, mapping.state) == ("parcelnumb", "NC")
    preset, mapping = pf.resolve_mapping(["PARNO", "ALTPARNO", "SITEADD"], {"apn_field": "altparno"})
    assert preset == "nc_onemap" and mapping.apn_field == "ALTPARNO"
    assert mapping.address_field == "SITEADD"
    with pytest.raises(InputError) as info:
        pf.resolve_mapping(["PIN14", "SITE_ADDR"], {"apn_field": "PIN14"})
    assert info.value.code == "unknown_parcel_fields" and "apn_field" in info.value.message
    with pytest.raises(InputError) as info:
        pf.resolve_mapping(["PIN14"], {"apn": "PIN14"})
    assert info.value.code == "invalid_mapping" and info.value.problem is Problem.UNPROCESSABLE


def test_situs_key_from_line_parts_and_placeholders() -> None:
    _, nc = pf.resolve_mapping(["parno", "siteadd", "saddno", "saddpref", "saddstr",
                                "saddsttyp", "sunit", "scity", "szip"], None)
    line = pf.situs_of({"siteadd": "12  N  OAK ST", "scity": "X", "szip": "27500"}, nc)
    parts = pf.situs_of({"siteadd": None, "saddno": 12.0, "saddpref": "N", "saddstr": "OAK",
                         "saddsttyp": "ST", "scity": "X", "szip": "27500"}, nc)
    assert line.key == parts.key and line.key is not None and "  " not in line.key
    assert line.address == "12 N OAK ST"
    assert pf.situs_of({"siteadd": "0 DEFAULT STREET", "szip": "27500"}, nc).key is None
    assert pf.situs_of({"siteadd": "  "}, nc) == pf.Situs(None, None)
    unit = pf.situs_of({"siteadd": "5 ELM ST", "sunit": "2", "szip": "27500"}, nc)
    assert unit.address == "5 ELM ST #2" and unit.key != line.key


# ------------------------------------------------------------------ zip safety and sniffing


def test_zip_bomb_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("parcels.shp", b"\x00" * (20 * 1024 * 1024))
        zf.writestr("parcels.shx", b"\x00")
        zf.writestr("parcels.dbf", b"\x00")
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(out.getvalue())
    assert info.value.problem is Problem.TOO_LARGE and info.value.code == "zip_bomb"


@pytest.mark.parametrize("evil", ["../p.shp", "/etc/p.shp", "a/../../p.shp", "C:\\p.shp"])
def test_path_traversal_entries_are_refused(evil: str) -> None:
    town = generate_town(10, households=False)
    data = shapefile_zip([p.geometry for p in town.parcels if not p.geometry.is_empty],
                         {"parno": [p.apn for p in town.parcels if not p.geometry.is_empty]},
                         "EPSG:4326", names={"p.shp": evil})
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(data)
    assert info.value.code == "zip_unsafe_path" and repr(evil) in info.value.message


def test_too_many_entries_and_total_size_limits() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for i in range(30):
            zf.writestr(f"f{i}.txt", b"x" * 100)
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(out.getvalue(), zip_limits=pf.ZipLimits(max_entries=20))
    assert info.value.code == "zip_too_many_entries" and "30" in info.value.message
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(out.getvalue(), zip_limits=pf.ZipLimits(max_total_uncompressed=1000))
    assert info.value.code == "zip_too_large" and info.value.problem is Problem.TOO_LARGE


def test_shapefile_in_a_subfolder_of_the_zip_is_found() -> None:
    town = generate_town(30, households=False)
    info, features = read_all(town_mod.to_shapefile_zip(town, folder="county data/2024"))
    assert info.inner_path == "county data/2024/parcels.shp"
    assert len(features) == len(town.parcels)


def test_item_limit_is_enforced_with_counts() -> None:
    data = town_mod.to_geojson(generate_town(30, households=False))
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(data, max_items=25)
    # 422 like the voter files' group limit: a limit to split for or raise, not an oversized body.
    assert info.value.problem is Problem.UNPROCESSABLE and info.value.details == {"features": 30, "limit": 25}


@pytest.mark.parametrize(("head", "filename", "code"), [
    (b"\x00\x00\x27\x0a" + b"\x00" * 96, "parcels.shp", "shapefile_not_zipped"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "map.png", "unsupported_format"),
    (b"SQLite format 3\x00" + b"\x00" * 100, "x.db", "unsupported_format"),
])
def test_unsupported_content_is_415(head: bytes, filename: str, code: str) -> None:
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(head, filename=filename)
    assert info.value.problem is Problem.UNSUPPORTED and info.value.code == code


def test_zip_with_two_datasets_asks_for_one() -> None:
    a = zipfile.ZipFile(io.BytesIO(town_mod.to_shapefile_zip(generate_town(5, households=False))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for prefix in ("a/", "b/"):
            for item in a.infolist():
                zf.writestr(prefix + item.filename, a.read(item))
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(out.getvalue())
    assert info.value.code == "zip_ambiguous" and "a/parcels.shp" in info.value.message


def test_zip_member_that_is_not_what_its_name_says_is_refused() -> None:
    vrt = (b'<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>/etc/passwd'
           b"</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>")
    for name in ("parcels.shp", "parcels.geojson"):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr(name, vrt)
            zf.writestr("parcels.shx", b"")
            zf.writestr("parcels.dbf", b"")
        with pytest.raises(InputError) as info:
            pf.inspect_parcel_file(out.getvalue())
        assert info.value.problem is Problem.UNSUPPORTED and name in info.value.message


def test_zipped_csv_and_geojson_are_read() -> None:
    town = generate_town(25, households=False)
    for name, data in (("town/parcels.csv", town_mod.to_csv(town)),
                       ("parcels.geojson", town_mod.to_geojson(town))):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name, data)
        info, features = read_all(out.getvalue())
        assert info.inner_path == name and info.feature_count == len(town.parcels)
        assert [a["parno"] for a in features.attributes] == [p.apn for p in town.parcels]


# ------------------------------------------------------------------ bad input


SQUARE = [[[-78.9, 35.9], [-78.89, 35.9], [-78.89, 35.91], [-78.9, 35.9]]]


def feature_collection(n: int, **top: Any) -> bytes:
    features = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": SQUARE},
                 "properties": {"parno": f"P{i}", "siteadd": f"{i} MAIN ST"}}
                for i in range(1, n + 1)]
    return json.dumps({"type": "FeatureCollection", **top, "features": features}).encode()


def test_geojson_without_name_is_read_after_staging_again() -> None:
    info, features = read_all(feature_collection(2))  # read_all stages a second copy
    assert info.layer is None
    assert [a["parno"] for a in features.attributes] == ["P1", "P2"]


@pytest.mark.parametrize(("data", "filename"), [
    (feature_collection(0), None),
    (b"parno,siteadd,WKT\n\n", "parcels.csv"),
])
def test_a_file_without_features_says_so(data: bytes, filename: str | None) -> None:
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(data, filename)
    assert (info.value.problem, info.value.code) == (Problem.UNPROCESSABLE, "empty_file")
    assert "no features" in info.value.message


def test_csv_rows_without_geometry_are_accepted_as_item_errors() -> None:
    info, features = read_all(b"parno,siteadd,WKT\nP1,1 MAIN ST\n", filename="parcels.csv")
    assert info.feature_count == 1 and info.crs == pf.WGS84
    out = pf.prepare_geometries(features.geometries, None, features.unparsed)
    assert out.problems[0] is not None and out.problems[0][0] == "empty_geometry"


def test_json_that_is_not_geojson_gets_no_server_path() -> None:
    with pytest.raises(InputError) as info:
        pf.inspect_parcel_file(json.dumps({"parcels": [1, 2]}).encode())
    message = info.value.message
    assert info.value.problem is Problem.UNPROCESSABLE and "FeatureCollection" in message
    assert tempfile.gettempdir() not in message and "DRIVER" not in message


def test_unparsable_wkt_says_so_with_the_parser_reason() -> None:
    data = b'parno,siteadd,WKT\nP1,1 MAIN ST,POLYGON((1 2\nP2,2 MAIN ST,"POINT (1 2)"\n'
    _, features = read_all(data, filename="parcels.csv")
    assert list(features.unparsed) == [0]
    part = features.part(1, 1)
    assert part.unparsed == {}
    out = pf.prepare_geometries(features.geometries, None, features.unparsed)
    assert out.problems[0] is not None
    assert out.problems[0][0] == "empty_geometry" and "WKT could not be parsed" in out.problems[0][1]


def test_scrub_paths_hides_staged_uploads() -> None:
    text = pf.scrub_paths("Layer 'cocoa-parcels-ab12' could not be opened; "
                          "/vsizip/{/tmp/cocoa-parcels-x.zip}/a/b.shp: bad")
    assert text == "Layer 'the uploaded file' could not be opened; the uploaded file: bad"
