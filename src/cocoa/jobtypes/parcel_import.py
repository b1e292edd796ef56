"""``parcel_import``: load parcel polygons, then link households to them.

Two phases, one checkpoint each, so a crash in either resumes exactly:

* ``import`` - checkpoint ``{"phase": "import", "feature": i}``: features
  ``i .. i+batch-1`` are read, reprojected to WGS84, repaired and upserted by
  (source, apn). A feature the batch cannot use is an item error; the job
  goes on.
* ``linking`` (:mod:`cocoa.jobtypes.parcel_linking`) - checkpoint
  ``{"phase": "linking", "after": household_id, ...}``: households are walked by id; each is linked by the rule of
  :mod:`cocoa.domain.parcel_links`: by address key equality
  (``households.address_key == parcels.situs_key``), else by its building's
  key (a flat on a parcel per building), else, when it has coordinates, by
  point-in-polygon against an STRtree of this source's parcels. The key map
  and tree are built once per run (``ctx.cache``), so the work is
  households x log(parcels), never parcels x households. The result counts
  the links by method and the households left unlinked, by reason.

Households created or geocoded after this job are linked by the voter import
and the geocoding job (same rule), so the order of the jobs does not matter.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import pyogrio.errors
import shapely
import sqlalchemy as sa
from pyproj import Transformer

from cocoa import jsontext
from cocoa.db.bulk import bind, bulk_for, chunks
from cocoa.db.engine import reading
from cocoa.db.tables import households, parcels
from cocoa.domain import parcel_files as pf
from cocoa.jobs.groups import LAST_IN_GROUP, Part
from cocoa.jobs.types import (
    Batch,
    Checkpoint,
    CreateContext,
    ItemError,
    JobFailed,
    JobValidationError,
    Params,
    RunContext,
    register,
)
from cocoa.jobtypes.input_errors import domain_input
from cocoa.jobtypes.parcel_linking import considered_by, link_batch, link_counts

READ_AHEAD = 100_000  # GeoJSON/CSV features per read (the default item limit)
_PARAM_KEYS = {"source", "format", "source_crs", "mapping", "layer"}
_UPDATE_COLUMNS = ("situs_address", "situs_key", "geometry_wkb", "min_lon", "min_lat",
                   "max_lon", "max_lat", "rep_lon", "rep_lat", "attributes", "import_job_id",
                   "updated_at")
_READER_KEY = "parcel_import.reader"


class ParcelImport:
    """The job type; stateless, everything per run lives in ``ctx.cache``."""

    name: ClassVar[str] = "parcel_import"
    needs_upload: ClassVar[bool] = True
    hidden: ClassVar[bool] = False
    batch_size_setting: ClassVar[str] = "parcel_batch_size"
    uses_helpers: ClassVar[bool] = False

    # ------------------------------------------------------------------ validate

    def validate(self, ctx: CreateContext) -> Params:
        raw = dict(ctx.params or {})
        unknown = sorted(set(raw) - _PARAM_KEYS)
        if unknown:
            raise JobValidationError(
                f"Unknown parameters {unknown}; parcel_import accepts {sorted(_PARAM_KEYS)}.",
                code="unknown_params", status=422)
        if ctx.upload is None:
            raise JobValidationError("A parcel file is required (multipart field 'file').",
                                     code="missing_file", status=400)
        mapping = _mapping_param(raw.get("mapping"))
        source_crs = _optional_text(raw, "source_crs")
        layer = _optional_text(raw, "layer")
        with domain_input():
            info = pf.inspect_parcel_file(
                ctx.upload, ctx.upload_filename, source_crs=source_crs, mapping=mapping,
                max_items=ctx.settings.max_items_per_group, layer=layer)  # above per-job: a group
        _check_format(_optional_text(raw, "format"), info.format)
        return {
            "source": _source_param(raw.get("source"), info.preset),
            "format": info.format, "source_crs": source_crs, "mapping": mapping,
            "layer": info.layer, "file": info.to_params(),
        }

    # ------------------------------------------------------------------ plan / run

    def split(self, ctx: CreateContext, params: Params, limit: int) -> list[Part] | None:
        """Feature ranges of at most ``limit`` (job groups): each child imports
        its features; only the last links households, once all parcels are in."""
        count = int(params["file"]["feature_count"])
        if count <= limit:
            return None
        return [Part({**params, "features": [start, min(start + limit, count)]},
                     start + 1, min(start + limit, count))
                for start in range(0, count, limit)]

    def plan(self, ctx: RunContext) -> int:
        start, end = _feature_range(ctx.params)
        return end - start

    def run_batch(self, ctx: RunContext, checkpoint: Checkpoint | None) -> Batch:
        checkpoint = checkpoint or {"phase": "import", "feature": _feature_range(ctx.params)[0]}
        if checkpoint.get("phase", "import") == "import":
            return _import_batch(ctx, int(checkpoint.get("feature", 0)))
        return link_batch(ctx, checkpoint)


# ---------------------------------------------------------------------- validation helpers


def _optional_text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise JobValidationError(f"'{key}' must be a string.", code="invalid_param", status=422)
    return value.strip()


def _mapping_param(value: Any) -> dict[str, Any] | None:
    """A mapping arrives as an object (JSON API) or a JSON string (multipart)."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise JobValidationError(
                f"'mapping' is not valid JSON: {exc.msg}. Send e.g. "
                '{"apn_field": "PIN", "address_field": "SITE_ADDR"}.',
                code="invalid_mapping", status=422) from exc
    if not isinstance(value, dict) or not all(
        isinstance(v, str) or v is None for v in value.values()
    ):
        raise JobValidationError("'mapping' must be an object of column names.",
                                 code="invalid_mapping", status=422)
    return dict(value)


def _check_format(claimed: str | None, detected: str) -> None:
    if claimed in (None, "auto") or claimed == detected:
        return
    if claimed not in pf.FORMATS:
        raise JobValidationError(
            f"Unknown format {claimed!r}; use one of {', '.join(pf.FORMATS)} or leave it out.",
            code="unknown_format", status=422)
    raise JobValidationError(
        f"The file was sent as {claimed} but its content is {detected}; "
        "leave 'format' out to use the detected one.", code="format_mismatch", status=422)


def _source_param(value: Any, preset: str | None) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return preset or "parcels"
    if not isinstance(value, str) or len(value.strip()) > 128:
        raise JobValidationError("'source' must be a name of at most 128 characters.",
                                 code="invalid_param", status=422)
    return value.strip()


# ---------------------------------------------------------------------- import phase


class _Reader:
    """The staged upload and, for GeoJSON/CSV, a read-ahead window.

    Shapefile, GeoPackage and FileGDB seek cheaply, so a batch reads exactly
    its features. GeoJSON and CSV are re-scanned from the top on every open,
    so one read serves ``READ_AHEAD`` features (kept column-wise, bounded by
    the item limit) and batches slice it - otherwise the import is quadratic.
    """

    def __init__(self, ctx: RunContext, info: pf.ParcelFileInfo) -> None:
        stream = ctx.open_upload()
        try:
            with domain_input():
                self.staged = pf.stage_upload(stream, info.located)
        finally:
            stream.close()
        self.info = info
        self.transformer: Transformer | None = pf.wgs84_transformer(info.crs)
        self._window: pf.FeatureSlice | None = None

    def read(self, start: int, count: int) -> pf.FeatureSlice:
        if self.info.format in pf.RANDOM_ACCESS_FORMATS:
            return self._read(start, count)
        window = self._window
        if window is None or not self._covers(window, start, count):
            window = self._read(start, max(count, READ_AHEAD))
            self._window = window
        return window.part(start - window.start, count)

    def _read(self, start: int, count: int) -> pf.FeatureSlice:
        """A file that validated but breaks mid-way is a job-level failure;
        everything imported before stays."""
        try:
            with domain_input():
                return pf.read_slice(self.staged, self.info, start, count)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
                pyogrio.errors.FieldError, csv.Error, UnicodeDecodeError) as exc:
            raise JobFailed(f"The parcel file could not be read from {pf.feature_ref(start)} "
                            f"on: {pf.scrub_paths(str(exc))}") from exc

    def _covers(self, window: pf.FeatureSlice, start: int, count: int) -> bool:
        end = window.start + len(window)
        return window.start <= start and (start + count <= end or end >= self.info.feature_count)

    def close(self) -> None:
        self._window = None
        self.staged.close()


def _reader(ctx: RunContext) -> _Reader:
    reader = ctx.cache.get(_READER_KEY)
    if not isinstance(reader, _Reader):
        reader = _Reader(ctx, pf.ParcelFileInfo.from_params(ctx.params["file"]))
        ctx.cache[_READER_KEY] = reader
    return reader


@dataclass(slots=True)
class _Prepared:
    """One batch, ready to write: rows keyed by APN (last wins) and findings."""

    rows: dict[str, dict[str, Any]]
    errors: list[ItemError]
    failed: int
    repaired: int


def _feature_range(params: Params) -> tuple[int, int]:
    """[start, end) of the features this job imports: a group's child's
    share (``features``), else the whole file."""
    share = params.get("features")
    if isinstance(share, list) and len(share) == 2:
        return int(share[0]), int(share[1])
    return 0, int(params["file"]["feature_count"])


def _import_batch(ctx: RunContext, start: int) -> Batch:
    reader = _reader(ctx)
    total = _feature_range(ctx.params)[1]
    features = reader.read(start, min(ctx.batch_size, total - start)) if start < total else None
    if not features or len(features) == 0:
        return _start_linking(ctx, start)  # ``start`` features were read, whatever was counted
    prepared = _prepare(ctx, reader, features)
    existing = _existing(ctx, list(prepared.rows))
    imported, updated = _classify(ctx, prepared, existing)
    end = start + len(features)
    rows = list(prepared.rows.values())
    return Batch(
        checkpoint={"phase": "import", "feature": end}, processed=len(features),
        succeeded=len(features) - prepared.failed, failed=prepared.failed,
        errors=prepared.errors, phase="import",
        write=lambda conn: _upsert(conn, rows),
        counts={"parcels_imported": imported, "parcels_updated": updated,
                "parcels_repaired": prepared.repaired,
                "item_errors": sum(e.severity == "error" for e in prepared.errors),
                "item_warnings": sum(e.severity == "warning" for e in prepared.errors)},
    )


def _prepare(ctx: RunContext, reader: _Reader, features: pf.FeatureSlice) -> _Prepared:
    geo = pf.prepare_geometries(features.geometries, reader.transformer, features.unparsed)
    good = np.array([p is None for p in geo.problems], dtype=bool)
    wkb, bounds, reps = _geometry_columns(geo.geometries, good)
    mapping, source, now = reader.info.mapping, ctx.params["source"], datetime.now(UTC)
    rows: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, int] = {}
    errors: list[ItemError] = []
    failed = repaired = 0
    for i, attributes in enumerate(features.attributes):
        index = features.start + i
        apn = pf.field_text(attributes, mapping.apn_field)
        problem = geo.problems[i] or _apn_problem(apn, mapping.apn_field)
        if problem:
            errors.append(ItemError(pf.feature_ref(index), problem[0], problem[1], index,
                                    original=_original_properties(attributes)))
            failed += 1
            continue
        if apn in rows:
            errors.append(_duplicate_warning(apn, index, first_seen[apn]))
        first_seen[apn] = index
        repaired += bool(geo.repaired[i])
        situs = pf.situs_of(attributes, mapping)
        rows.pop(apn, None)  # re-insert so dict order follows the file
        rows[apn] = {  # the columns of _INSERT_COLUMNS, plus where the feature was
            "source": source, "apn": apn, "situs_address": (situs.address or None)
            and situs.address[:300], "situs_key": situs.key and situs.key[:400],
            "geometry_wkb": wkb[i], "min_lon": bounds[i][0], "min_lat": bounds[i][1],
            "max_lon": bounds[i][2], "max_lat": bounds[i][3], "rep_lon": reps[i][0],
            "rep_lat": reps[i][1], "attributes": attributes, "import_job_id": ctx.job_id,
            "created_at": now, "updated_at": now, "_index": index,
        }
    return _Prepared(rows, errors, failed, repaired)


def _original_properties(attributes: dict[str, Any]) -> str:
    """A rejected feature's properties as JSON, for errors.csv. Only the
    properties: its geometry can be megabytes and is in the file anyway."""
    return json.dumps(attributes, ensure_ascii=False, default=str)


def _apn_problem(apn: str, column: str) -> tuple[str, str] | None:
    if not apn:
        return ("missing_apn", f"The parcel id column {column!r} is empty; every parcel "
                               "needs its APN.")
    if len(apn) > 128:
        return ("apn_too_long", f"The parcel id {apn[:40]!r}... is {len(apn)} characters; "
                                "at most 128 are kept. Is the mapping's apn_field right?")
    return None


def _geometry_columns(geoms: np.ndarray, good: np.ndarray) -> tuple[list[Any], Any, Any]:
    """WKB (lossless doubles), bbox and a point guaranteed on the polygon."""
    wkb: list[Any] = [None] * len(geoms)
    bounds = np.full((len(geoms), 4), np.nan)
    reps = np.full((len(geoms), 2), np.nan)
    if good.any():
        chosen = geoms[good]
        encoded = shapely.to_wkb(chosen)
        for slot, blob in zip(np.flatnonzero(good), encoded, strict=True):
            wkb[slot] = blob
        bounds[good] = shapely.bounds(chosen)
        reps[good] = shapely.get_coordinates(shapely.point_on_surface(chosen))
    return wkb, bounds.tolist(), reps.tolist()


def _duplicate_warning(apn: str, index: int, earlier: int) -> ItemError:
    return ItemError(
        pf.feature_ref(index), "duplicate_apn",
        f"APN {apn!r} also appears at {pf.feature_ref(earlier)}; this later feature "
        "replaces it (the last one in the file wins).", index, severity="warning")


def _existing(ctx: RunContext, apns: list[str]) -> dict[str, str | None]:
    """APN -> import_job_id of rows already stored for this source."""
    found: dict[str, str | None] = {}
    source = ctx.params["source"]
    with reading(ctx.engine) as conn:
        for chunk in chunks(apns, 500):
            query = sa.select(parcels.c.apn, parcels.c.import_job_id).where(
                parcels.c.source == source, parcels.c.apn.in_(chunk))
            found.update({str(row[0]): row[1] for row in conn.execute(query)})
    return found


def _classify(
    ctx: RunContext, prepared: _Prepared, existing: dict[str, str | None],
) -> tuple[int, int]:
    """Count new vs updated parcels; a row an earlier batch of *this* job
    wrote is a duplicate APN within the file (warning, counted once)."""
    imported = updated = 0
    for apn, row in prepared.rows.items():
        if apn not in existing:
            imported += 1
        elif existing[apn] == ctx.job_id:
            prepared.errors.append(ItemError(
                pf.feature_ref(row["_index"]), "duplicate_apn",
                f"APN {apn!r} appeared earlier in the file; this later feature replaces it "
                "(the last one in the file wins).", row["_index"], severity="warning"))
        else:
            updated += 1
    return imported, updated


_INSERT_COLUMNS = ("source", "apn", "situs_address", "situs_key", "geometry_wkb", "min_lon",
                   "min_lat", "max_lon", "max_lat", "rep_lon", "rep_lat", "attributes",
                   "import_job_id", "created_at", "updated_at")


def _upsert(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Bulk insert-or-update on (source, apn): ON CONFLICT on both backends.

    The hot path of a parcel import, so it bypasses Core's per-row
    parameter processing (see :mod:`cocoa.db.bulk`): timestamps are
    converted once per batch by the column's own bind processor and the
    rows go to the driver's executemany, which costs far less CPU than one
    multi-row VALUES statement.
    """
    if not rows:
        return
    values = bulk_for(conn).marks(_INSERT_COLUMNS, jsonb={"attributes"})
    updates = ", ".join(f"{c} = excluded.{c}" for c in _UPDATE_COLUMNS)
    sql = (f"INSERT INTO parcels ({', '.join(_INSERT_COLUMNS)}) VALUES ({values}) "
           f"ON CONFLICT (source, apn) DO UPDATE SET {updates}")
    stamp = bind(conn, parcels.c.created_at, rows[0]["created_at"])
    dumps = jsontext.dumps
    conn.exec_driver_sql(sql, [
        (r["source"], r["apn"], r["situs_address"], r["situs_key"], r["geometry_wkb"],
         r["min_lon"], r["min_lat"], r["max_lon"], r["max_lat"], r["rep_lon"], r["rep_lat"],
         dumps(r["attributes"]).decode(), r["import_job_id"], stamp, stamp) for r in rows])


# ---------------------------------------------------------------------- linking phase


def _start_linking(ctx: RunContext, features: int) -> Batch:
    """The hand-over batch: counts the households the second phase will visit."""
    reader = ctx.cache.pop(_READER_KEY, None)
    if isinstance(reader, _Reader):
        reader.close()
    end, features = features, features - _feature_range(ctx.params)[0]  # read by this job
    if not ctx.params.get(LAST_IN_GROUP, True):  # a group's earlier part: the last one links
        return Batch(checkpoint={"phase": "import", "feature": end}, processed=0,
                     phase="import", total=features, done=True)
    with reading(ctx.engine) as conn:
        considered = int(conn.execute(
            sa.select(sa.func.count()).select_from(households)
            .where(considered_by(ctx.params["source"]))).scalar_one())
    done = considered == 0
    return Batch(
        checkpoint={"phase": "linking", "after": 0, "features": features,
                    "considered": considered, "seen": 0},
        processed=0, phase="linking", total=features + considered, done=done,
        counts=link_counts([], []))  # every counter present, also with no households


register(ParcelImport())
