"""Reading parcel files: format sniffing, zip safety, CRS, field mapping, slices.

Parcel data arrives as GeoJSON, a zipped shapefile, a GeoPackage, a zipped
File Geodatabase or a CSV with a WKT/GeoJSON geometry column. Everything here
works on an upload the client sent, so:

* the format is decided from the bytes (:mod:`.sniffing`), the client's file
  name is only a hint for error messages;
* GDAL reads a copy staged under a server-generated temporary name
  (:mod:`.staging`); a path inside a zip is only ever *read* through
  ``/vsizip/`` after the zip directory passed :mod:`cocoa.domain.zip_safety`;
* features are read in slices (:mod:`.slices`) so a batch never needs the
  whole file in memory, and the checkpoint is a feature index.

The other modules: :mod:`.inspection` (what validation learns, kept as
:mod:`.info` in the job's params), :mod:`.csv_files`, :mod:`.mapping` (which
columns hold the id and address), :mod:`.situs` (the address and its
household key), :mod:`.crs` and :mod:`.geometry` (reprojection and repair).

This package exports what the rest of the code base uses; tests of the
internals import them from their module.
"""

from __future__ import annotations

from cocoa.domain.parcel_files.crs import WGS84, wgs84_transformer
from cocoa.domain.parcel_files.geometry import prepare_geometries
from cocoa.domain.parcel_files.info import FORMATS, ParcelFileInfo
from cocoa.domain.parcel_files.inspection import inspect_parcel_file
from cocoa.domain.parcel_files.mapping import resolve_mapping
from cocoa.domain.parcel_files.situs import Situs, field_text, situs_of
from cocoa.domain.parcel_files.slices import (
    RANDOM_ACCESS_FORMATS,
    FeatureSlice,
    feature_ref,
    read_slice,
)
from cocoa.domain.parcel_files.staging import StagedFile, scrub_paths, stage_upload
from cocoa.domain.zip_safety import ZipLimits

__all__ = [
    "FORMATS", "RANDOM_ACCESS_FORMATS", "WGS84", "FeatureSlice", "ParcelFileInfo", "Situs",
    "StagedFile", "ZipLimits", "feature_ref", "field_text", "inspect_parcel_file",
    "prepare_geometries", "read_slice", "resolve_mapping", "scrub_paths", "situs_of",
    "stage_upload", "wgs84_transformer",
]
