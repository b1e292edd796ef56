"""``cocoa samples DIR``: the files every example in the docs uploads.

One small town (two streets of Bahama, NC, ZIP 27501 - away from the demo
town's streets, so both can live in one database) written as:

* a voter file in each supported layout (:mod:`cocoa.samples.town_voters`),
  each with a bad date, a ragged row, an unplaceable address and a repeated
  voter at known rows;
* its parcels in each format the parcel import reads: zipped shapefile (NC
  State Plane feet, with ``.prj``), GeoPackage, GeoJSON with county-style
  field names that need a ``mapping``, and CSV with a WKT column - each with
  :func:`cocoa.samples.parcels.generate_town`'s mess (an empty geometry, a
  repeated APN, a bow-tie polygon, stacked condos ...);
* ``README.txt`` listing the files, what is wrong with them, and how to
  import them.

The file names are the ones the README and ``docs/`` use. Nothing is
overwritten unless asked: a newcomer's folder may hold real files.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from cocoa.samples.parcels import Town, generate_town, to_csv, to_geojson, to_gpkg, to_shapefile_zip
from cocoa.samples.town_voters import UNPLACED_TEXT, VoterSample, voter_samples
from cocoa.samples.vendor_export import VendorFile, generate_vendor

SEED = 21
PARCELS = 60
FIRST_LOT = 25 * 200 + 170  # street rows 25-26 of the grid: River St and Meadow St, Bahama
APARTMENTS = 0.1
# county.geojson's field names: not a schema the import knows, so it needs a mapping
COUNTY_FIELDS = {"parno": "PIN", "siteadd": "SITE_ADDR", "scity": "SITE_CITY",
                 "szip": "SITE_ZIP", "ownname": "OWNER"}
COUNTY_MAPPING = {"apn_field": "PIN", "address_field": "SITE_ADDR", "zip_field": "SITE_ZIP"}
VENDOR_ROWS = 40  # vendor.csv: a vendor export (issue 17), read with aliases or a mapping


def vendor_file() -> VendorFile:
    """vendor.csv: a vendor's export of Bahama voters (not an official layout)."""
    return generate_vendor(VENDOR_ROWS, seed=SEED)


@dataclass(frozen=True, slots=True)
class ParcelSample:
    name: str
    format: str
    data: bytes
    note: str
    options: dict[str, str] = field(default_factory=dict)  # import options it needs


@dataclass(frozen=True, slots=True)
class SampleSet:
    town: Town
    voters: list[VoterSample]
    parcels: list[ParcelSample]

    @property
    def features(self) -> int:
        return len(self.town.parcels)

    def files(self) -> dict[str, bytes]:
        """File name -> bytes, README.txt last."""
        out = {s.name: s.data for s in self.voters} | {p.name: p.data for p in self.parcels}
        out["vendor.csv"] = vendor_file().data
        out[ZIPPED_NAME] = zipped_voters(self)
        out["README.txt"] = readme(self).encode("utf-8")
        return out


ZIPPED_NAME = "ncvoter_Statewide.zip"  # as the NC State Board of Elections names its download
ZIPPED_MEMBER = "ncvoter92.txt"


def zipped_voters(samples: SampleSet) -> bytes:
    """The NC file zipped, as the state publishes its voter files (issue 17)."""
    data = next(v.data for v in samples.voters if v.name == ZIPPED_MEMBER)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(ZIPPED_MEMBER, date_time=(2024, 1, 1, 0, 0, 0))  # same bytes every run
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, data)
    return out.getvalue()


def build() -> SampleSet:
    """The sample files; the same bytes on every run (GeoPackage aside, which
    records its creation time)."""
    town = generate_town(PARCELS, seed=SEED, spelling="usps", apartments=APARTMENTS,
                         first_lot=FIRST_LOT)
    return SampleSet(town, voter_samples(town.households, SEED), _parcel_files(town))


def _parcel_files(town: Town) -> list[ParcelSample]:
    return [
        ParcelSample("parcels.zip", "zipped shapefile", to_shapefile_zip(town),
                     "NC State Plane (EPSG:2264, US feet) with its .prj; NC OneMap field names."),
        ParcelSample("wake_parcels.gpkg", "GeoPackage", to_gpkg(town),
                     "WGS84, one layer named 'parcels'; NC OneMap field names."),
        ParcelSample("county.geojson", "GeoJSON", _county_geojson(town),
                     "County-style field names (PIN, SITE_ADDR, SITE_ZIP ...) the import does not "
                     "know: it needs a mapping.", {"mapping": json.dumps(COUNTY_MAPPING)}),
        ParcelSample("parcels.csv", "CSV with a WKT column", to_csv(town),
                     "WGS84 polygons as WKT text; NC OneMap field names."),
    ]


def _county_geojson(town: Town) -> bytes:
    """The GeoJSON with only a county's own field names."""
    collection = json.loads(to_geojson(town))
    for feature in collection["features"]:
        props = feature["properties"]
        feature["properties"] = {new: props.get(old) for old, new in COUNTY_FIELDS.items()}
    return (json.dumps(collection, indent=None) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- README.txt


def readme(samples: SampleSet) -> str:
    lines = [
        "Sample files written by `cocoa samples`",
        "=======================================",
        "",
        "One small town - two streets of Bahama, NC 27501 - in every voter file layout",
        "and every parcel format Cocoa Canvas imports. The voter files describe the same",
        "households, and the parcel files the same lots, so any of them imports into one",
        "town and links to the same parcels. Each has a few problems a real file has.",
        "",
        "Voter files (cocoa import voters FILE, or POST /api/v1/voters/import with format=auto)",
        "-------------------------------------------------------------------------------------",
    ]
    for v in samples.voters:
        lines += ["", f"{v.name}  ({v.layout}, {v.rows} data rows)"]
        lines += [f"  line {n}: {_problem(code)}" for n, code in sorted((v.errors | v.warnings).items())]
        lines.append(f"  line {v.repeated_line}: the voter of line {v.superseded_line} again "
                     f"({'same person, address spelled another way' if v.layout == 'simple_csv' else 'after a move'}); "
                     "the later row wins")
        if v.layout == "simple_csv":  # no id: the repeat is reported, in case it is two people
            lines.append(f"  line {v.superseded_line}: same_voter_key (warning): same name and "
                         f"address as line {v.repeated_line}, so one voter; the later row is kept")
    lines += _vendor_readme()
    lines += ["", f"{ZIPPED_NAME}  (a zip holding {ZIPPED_MEMBER}, as the state publishes it)",
              "  Imported as it is: the file inside is read as a stream (a zip with several files",
              "  needs --member NAME).  cocoa import voters " + ZIPPED_NAME]
    lines += [
        "",
        "Parcel files (cocoa import parcels FILE, or POST /api/v1/gis/parcels/import)",
        "-----------------------------------------------------------------------------",
    ]
    for p in samples.parcels:
        lines += ["", f"{p.name}  ({p.format}, {samples.features} features)", f"  {p.note}"]
        if "mapping" in p.options:
            lines.append(f"  cocoa import parcels {p.name} --mapping '{p.options['mapping']}'")
    lines += ["", "In every parcel file:", *(f"  {text}" for text in parcel_mess(samples.town)), ""]
    lines += [
        "Try, after `cocoa quickstart`:",
        "",
        "  cocoa import voters ncvoter92.txt --watch",
        "  cocoa import parcels wake_parcels.gpkg --watch",
        "  cocoa geocode --zip-code 27501 --watch",
        "",
    ]
    return "\n".join(lines)


def _vendor_readme() -> list[str]:
    vendor = vendor_file()
    return [
        "", f"vendor.csv  (a vendor export, {vendor.rows} data rows)",
        "  Not an official layout: Voter ID, First Name, Last Name, Street Address, Apt, City,",
        "  State, Zip Code. format=auto reads it: voters keyed by 'Voter ID', flats told apart",
        f"  by 'Apt' ({vendor.households} households in {vendor.buildings} buildings). Many voters "
        "share a name.",
        "  Look before importing:  cocoa import voters vendor.csv --preview",
        "  Name columns yourself:  cocoa import voters vendor.csv --mapping "
        "'{\"voter_id\": \"Voter ID\", \"unit\": \"Apt\"}'",
    ]


def parcel_mess(town: Town) -> list[str]:
    """What is odd about the parcel files, with feature numbers (1 = the first)."""
    where: dict[str, list[int]] = {}
    for number, parcel in enumerate(town.parcels, start=1):
        where.setdefault(parcel.kind, []).append(number)

    def at(kind: str) -> str:
        numbers = where[kind]
        return f"feature{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"

    text = {
        "empty": "an empty geometry: an item error (empty_geometry), the feature is skipped",
        "duplicate": "the same APN twice: the later feature wins, with a duplicate_apn warning",
        "bowtie": "self-intersecting ('bow-tie') polygons: repaired and counted as parcels_repaired",
        "multi": "a lot with a detached back piece (a MultiPolygon)",
        "placeholder": "situs '0 DEFAULT STREET': only a household's coordinates can link to it",
        "condo": "stacked condo parcels: one footprint, one APN per unit",
        "apartment": "apartment buildings: one parcel each; their flats link by the building's address",
    }
    return [f"{at(kind)}: {what}" for kind, what in text.items() if kind in where]


def _problem(code: str) -> str:
    return code + {
        "ragged_row": " (item error): a ragged row, two fields short; the row is not imported",
        "bad_date": " (warning): an impossible date, February 30; the voter is imported",
        "address_unplaced": f" (warning): text the address normaliser cannot place "
                            f"('{UNPLACED_TEXT}'); the voter is imported",
    }[code]


# --------------------------------------------------------------------------- writing


class SamplesExist(Exception):
    """Some sample files already exist and ``force`` was not given."""

    def __init__(self, existing: list[Path]) -> None:
        super().__init__(", ".join(str(p) for p in existing))
        self.existing = existing


def write_samples(directory: Path, *, force: bool = False) -> list[Path]:
    """Write the sample files into ``directory`` (created if missing).

    Checks every name first, so a refusal writes nothing at all.
    """
    files = build().files()
    targets = [directory / name for name in files]
    existing = [p for p in targets if p.exists() or p.is_symlink()]
    if existing and not force:
        raise SamplesExist(existing)
    directory.mkdir(parents=True, exist_ok=True)
    for path, data in zip(targets, files.values(), strict=True):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # replaces a symlink itself, never the file it points to
    return targets
