"""What validation learnt about a parcel file, kept in the job's params."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cocoa.domain.errors import InputError, Problem
from cocoa.domain.parcel_files.mapping import FieldMapping
from cocoa.domain.parcel_files.sniffing import Located

FORMATS = ("geojson", "shapefile", "gpkg", "filegdb", "csv")


@dataclass(slots=True)
class ParcelFileInfo:
    """What validation learnt about the file; stored in the job params so the
    worker reads exactly what was validated."""

    format: str
    container: str
    inner_path: str | None
    layer: str | None
    crs: str
    crs_origin: str  # file | param | assumed
    preset: str | None
    mapping: FieldMapping
    feature_count: int
    fields: list[str] = field(default_factory=list)
    geometry_field: str | None = None  # CSV only

    @property
    def located(self) -> Located:
        return Located(self.format, self.container, self.inner_path)

    def to_params(self) -> dict[str, Any]:
        data = asdict(self)
        data["mapping"] = self.mapping.to_dict()
        return data

    @classmethod
    def from_params(cls, data: dict[str, Any]) -> ParcelFileInfo:
        values = dict(data)
        values["mapping"] = FieldMapping(**values["mapping"])
        return cls(**values)


def stored_layer(located: Located, chosen: str | None) -> str | None:
    """The layer the worker must read. GeoJSON has exactly one, and GDAL
    names it after the staged file (which the worker stages anew under
    another temporary name) when the file has no top-level ``name``: so
    none is stored and the worker reads the only layer there is (also for
    jobs validated before, whose params still name the first staged copy)."""
    return None if located.format == "geojson" else chosen


def no_features() -> InputError:
    return InputError("The file holds no features.", code="empty_file", problem=Problem.UNPROCESSABLE)
