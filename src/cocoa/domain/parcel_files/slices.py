"""Reading features in slices, so a batch never needs the whole file in memory.

The checkpoint of a parcel import is a feature index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import pyogrio.raw
import shapely

from cocoa.domain.parcel_files.csv_files import csv_rows, parse_text_geometries_checked
from cocoa.domain.parcel_files.info import ParcelFileInfo, stored_layer
from cocoa.domain.parcel_files.staging import StagedFile, gdal_path


@dataclass(slots=True)
class FeatureSlice:
    """Features ``start .. start+len-1`` of the file: geometry as shapely
    objects in the file's CRS (None when missing/unparsable) and every
    attribute as JSON-ready values, kept column-wise (one list per field) so a
    read-ahead window costs no per-feature dicts until a batch asks."""

    start: int
    geometries: np.ndarray
    names: list[str]
    columns: list[list[Any]]
    unparsed: dict[int, str] = field(default_factory=dict)  # relative index -> why

    def __len__(self) -> int:
        return len(self.geometries)

    @property
    def attributes(self) -> list[dict[str, Any]]:
        if not self.names:
            return [{} for _ in range(len(self))]
        return [dict(zip(self.names, row, strict=True)) for row in zip(*self.columns, strict=True)]

    def part(self, offset: int, count: int) -> FeatureSlice:
        """Features ``offset .. offset+count-1`` of this slice (relative)."""
        end = offset + count
        unparsed = {i - offset: why for i, why in self.unparsed.items() if offset <= i < end}
        return FeatureSlice(self.start + offset, self.geometries[offset:end], self.names,
                            [c[offset:end] for c in self.columns], unparsed)


# Formats GDAL can seek in (an index or SQL offset); GeoJSON and CSV are
# re-scanned from the top on every open.
RANDOM_ACCESS_FORMATS = frozenset({"shapefile", "gpkg", "filegdb"})


def read_slice(staged: StagedFile, info: ParcelFileInfo, start: int, count: int) -> FeatureSlice:
    """Read features ``[start, start + count)``; fewer at the end of the file."""
    if info.format == "csv":
        return _read_csv_slice(staged.path, info, start, count)
    path = gdal_path(staged, info.located)
    meta, _fids, geometry, columns = pyogrio.raw.read(
        path, layer=stored_layer(info.located, info.layer), skip_features=start, max_features=count,
        datetime_as_string=True)
    names = [str(n) for n in meta["fields"]]
    values = [_json_column(col) for col in columns]
    n = len(geometry) if geometry is not None else (len(values[0]) if values else 0)
    geoms = shapely.from_wkb(geometry, on_invalid="ignore") if geometry is not None \
        else np.full(n, None, dtype=object)
    return FeatureSlice(start, np.asarray(geoms, dtype=object), names, values)


def _json_column(column: np.ndarray) -> list[Any]:
    """A numpy column as plain Python values; NaN and NaT become None."""
    values: list[Any] = column.tolist()
    if column.dtype.kind == "f":
        return [None if v is not None and math.isnan(v) else v for v in values]
    if column.dtype.kind in "mM":
        return [None if v is None else str(v) for v in values]
    if column.dtype.kind != "O":
        return values
    texts = [v for v in values if v is not None]
    if all(type(v) is str for v in texts) and "\x00" not in "".join(texts):
        return values  # the common case, checked at C speed
    return [_json_value(v) for v in values]


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")  # JSONB refuses NUL characters
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_csv_slice(path: str, info: ParcelFileInfo, start: int, count: int) -> FeatureSlice:
    rows = csv_rows(path)
    header = next(rows)
    lowered = [h.strip().lower() for h in header]
    geometry_index = lowered.index((info.geometry_field or "").strip().lower())
    keep = [i for i in range(len(header)) if i != geometry_index]
    data_rows = (r for r in rows if any(r))
    texts: list[str | None] = []
    records: list[list[Any]] = []
    width = len(header)
    for row in islice(data_rows, start, start + count):
        padded = row + [""] * (width - len(row)) if len(row) < width else row
        texts.append(padded[geometry_index])
        records.append([padded[i] or None for i in keep])
    columns = [list(c) for c in zip(*records, strict=True)] if records else [[] for _ in keep]
    geometries, unparsed = parse_text_geometries_checked(texts)
    return FeatureSlice(start, geometries, [header[i] for i in keep], columns, unparsed)


def feature_ref(index: int) -> str:
    """1-based, as a person counts features in a GIS table."""
    return f"feature {index + 1}"
