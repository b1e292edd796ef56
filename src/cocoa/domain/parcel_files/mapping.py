"""Which source columns hold the parcel id and the situs address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from cocoa.domain.errors import InputError, Problem


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Which source columns hold the parcel id and the situs address.

    ``address_field`` is a full street line; when it is empty the line is
    composed from the parts (number, prefix, street, type, suffix).
    ``state`` is a fixed value for files without a state column (NC OneMap is
    one state by definition), needed because the household key falls back to
    city + state when a ZIP is missing.
    """

    apn_field: str
    address_field: str | None = None
    city_field: str | None = None
    zip_field: str | None = None
    state_field: str | None = None
    unit_field: str | None = None
    number_field: str | None = None
    prefix_field: str | None = None
    street_field: str | None = None
    type_field: str | None = None
    suffix_field: str | None = None
    state: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


_PARTS = {"number_field": "saddno", "prefix_field": "saddpref", "street_field": "saddstr",
          "type_field": "saddsttyp", "suffix_field": "saddstsuf", "unit_field": "sunit",
          "city_field": "scity", "zip_field": "szip"}
PRESETS: dict[str, dict[str, str]] = {
    "nc_onemap": {"apn_field": "parno", "address_field": "siteadd", **_PARTS, "state": "NC"},
    "regrid": {"apn_field": "parcelnumb", "address_field": "address", **_PARTS,
               "state_field": "state2"},
}
_MAPPING_KEYS = {f for f in FieldMapping.__dataclass_fields__}
_APN_HINTS = ("apn", "pin", "parcel", "parno", "parcelnumb", "parcel_id", "parcelid", "pid")
_ADDRESS_HINTS = ("addr", "situs", "site", "street", "location")


def resolve_mapping(
    fields: Sequence[str], explicit: dict[str, Any] | None,
) -> tuple[str | None, FieldMapping]:
    """The preset recognised in ``fields`` (case-insensitively), with any
    explicit mapping keys laid over it; without a preset the explicit mapping
    must name at least the APN and address columns.

    Overlaying lets a client fix one thing (``{"state": "NC"}``, or a
    different id column) without restating the whole preset.
    """
    by_lower = {f.lower(): f for f in fields}
    overrides = _explicit_columns(by_lower, explicit) if explicit else {}
    for name, preset in PRESETS.items():
        mapping = _apply_preset(by_lower, preset)
        if mapping is not None:
            return name, replace(mapping, **overrides)
    if overrides.get("apn_field") and (
        overrides.get("address_field") or overrides.get("street_field")
    ):
        return None, FieldMapping(**overrides)
    raise _unknown_fields(fields, explicit)


def _apply_preset(by_lower: dict[str, str], preset: dict[str, str]) -> FieldMapping | None:
    if preset["apn_field"] not in by_lower:
        return None
    has_line = preset["address_field"] in by_lower
    has_parts = {"saddno", "saddstr"} <= by_lower.keys()
    if not (has_line or has_parts):
        return None
    values: dict[str, str | None] = {}
    for key, column in preset.items():
        values[key] = column if key == "state" else by_lower.get(column)
    return FieldMapping(**values)  # type: ignore[arg-type]


def _explicit_columns(by_lower: dict[str, str], explicit: dict[str, Any]) -> dict[str, Any]:
    """Explicit mapping keys resolved to the file's own column spelling."""
    unknown_keys = sorted(set(explicit) - _MAPPING_KEYS - {"geometry_field"})
    if unknown_keys:
        raise InputError(
            f"Unknown mapping keys {unknown_keys}; use {sorted(_MAPPING_KEYS | {'geometry_field'})}.",
            code="invalid_mapping", problem=Problem.UNPROCESSABLE)
    values: dict[str, str | None] = {}
    missing: list[str] = []
    for key, column in explicit.items():
        if column in (None, "") or key == "geometry_field":
            continue
        if key == "state":
            values[key] = str(column).strip().upper()
            continue
        actual = by_lower.get(str(column).strip().lower())
        if actual is None:
            missing.append(f"{key}={column!r}")
        values[key] = actual
    if missing:
        raise InputError(
            f"The mapping names columns the file does not have: {', '.join(missing)}. "
            f"The file's columns are: {', '.join(by_lower.values())}.",
            code="mapping_field_missing", problem=Problem.UNPROCESSABLE,
            details={"missing": missing, "columns": list(by_lower.values())})
    return values


def _unknown_fields(fields: Sequence[str], explicit: dict[str, Any] | None) -> InputError:
    apn = [f for f in fields if any(h in f.lower() for h in _APN_HINTS)]
    addr = [f for f in fields if any(h in f.lower() for h in _ADDRESS_HINTS)]
    sent = f"The mapping sent ({', '.join(sorted(explicit))}) is incomplete. " if explicit else ""
    return InputError(
        f"{sent}The parcel columns were not recognised as NC OneMap (parno, siteadd, scity, szip) "
        "or Regrid (parcelnumb, address, scity, szip). Send a mapping with 'apn_field' and "
        "'address_field' (optional 'city_field', 'zip_field'). "
        f"Candidate id columns: {', '.join(apn) or 'none'}; "
        f"candidate address columns: {', '.join(addr) or 'none'}; "
        f"all columns: {', '.join(fields)}.",
        code="unknown_parcel_fields", problem=Problem.UNPROCESSABLE,
        details={"apn_candidates": apn, "address_candidates": addr, "columns": list(fields)})
