"""``/api/v1/households``, ``/api/v1/voters`` and ``/api/v1/map``: what the jobs produced.

Read-only and viewer-readable (any authenticated user; the web pages' session
cookie works too, GET only). Handlers are plain ``def``: FastAPI runs their
queries in its threadpool. Queries live in :mod:`cocoa.browse`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query

from cocoa.api.browse_schemas import FeatureCollection, HouseholdDetail, HouseholdList, VoterDetail, VoterList
from cocoa.api.deps import CurrentUser, Manager
from cocoa.api.errors import ApiError
from cocoa.api.jobs_routes import JSONBody, Offset
from cocoa.api.schemas import NO_NUL, errors
from cocoa.browse import geojson
from cocoa.browse.filters import HouseholdFilter, UnknownJob
from cocoa.browse.households import household_detail, list_households, list_voters, voter_detail
from cocoa.db.engine import reading
from cocoa.jobs.manager import JobManager

router = APIRouter(tags=["households"])

MAX_PAGE = 200
MAX_FEATURES = 5000
DB_INT = 2**31 - 1

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size, 1..{MAX_PAGE}.")]
Search = Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description=(
    "An address (misspellings are fine: `120 Mian Stret`), a voter's name, or a voter id."))]
Text = Annotated[str | None, Query(max_length=128, pattern=NO_NUL)]
HouseholdId = Annotated[int, Path(ge=1, le=DB_INT)]
VoterId = Annotated[int, Path(ge=1, le=DB_INT)]
JobFilter = Annotated[str | None, Query(max_length=64, pattern=NO_NUL,
                                        description="Only households this job created or changed.")]
Geocoded = Annotated[bool | None, Query(description="Only households with (true) or without (false) coordinates.")]
Linked = Annotated[bool | None, Query(description="Only households linked (true) or not (false) to a parcel.")]
BBoxArg = Annotated[str, Query(max_length=200, pattern=NO_NUL,
                               description="The view: `west,south,east,north` in degrees (WGS84).")]


def household_filter(city: str | None, zip_code: str | None, precinct: str | None, geocoded: bool | None,
                     linked: bool | None, job_id: str | None) -> HouseholdFilter:
    return HouseholdFilter(city=city, zip_code=zip_code, precinct=precinct, geocoded=geocoded, linked=linked,
                           job_id=job_id)


def one_or_404(manager: JobManager, fetch: Callable[[sa.Connection, int], dict[str, Any] | None], row_id: int,
               noun: str) -> JSONBody:
    """One row by id, or the 404 ``<noun>_not_found`` that names the id asked for."""
    with reading(manager.engine) as conn:
        found = fetch(conn, row_id)
    if found is None:
        raise ApiError(404, f"No {noun} with id {row_id}.", f"{noun}_not_found")
    return JSONBody(found)


def unknown_job(job_id: str | None) -> ApiError:
    return ApiError(422, f"job_id: there is no job {job_id!r}.", "unknown_job", {"job_id": job_id})


@router.get("/households", response_model=HouseholdList, responses=errors(401, 422))
def households_list(
    _: CurrentUser, manager: Manager, q: Search = None, city: Text = None, zip_code: Text = None,
    precinct: Text = None, geocoded: Geocoded = None, linked: Linked = None, job_id: JobFilter = None,
    limit: Limit = 50, offset: Offset = 0,
) -> JSONBody:
    """Households, filtered and paged; with ``q``, best matches first."""
    flt = household_filter(city, zip_code, precinct, geocoded, linked, job_id)
    with reading(manager.engine) as conn:
        try:
            found, total = list_households(conn, flt, q, limit, offset)
        except UnknownJob:
            raise unknown_job(job_id) from None
    return JSONBody({"households": found, "total": total, "limit": limit, "offset": offset})


@router.get("/households/{household_id}", response_model=HouseholdDetail, responses=errors(401, 404, 422))
def household_get(_: CurrentUser, manager: Manager, household_id: HouseholdId) -> JSONBody:
    """One household: its voters, normalised address and key, parcel, coordinates, and the jobs that touched it."""
    return one_or_404(manager, household_detail, household_id, "household")


@router.get("/voters", response_model=VoterList, responses=errors(401, 422))
def voters_list(
    _: CurrentUser, manager: Manager, q: Annotated[str | None, Query(
        max_length=128, pattern=NO_NUL, description="A voter id, or the start of first/last names.")] = None,
    household_id: Annotated[int | None, Query(ge=1, le=DB_INT)] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> JSONBody:
    """Voters, by household or search, in id order."""
    with reading(manager.engine) as conn:
        found, total = list_voters(conn, q, household_id, limit, offset)
    return JSONBody({"voters": found, "total": total, "limit": limit, "offset": offset})


@router.get("/voters/{voter_id}", response_model=VoterDetail, responses=errors(401, 404, 422))
def voter_get(_: CurrentUser, manager: Manager, voter_id: VoterId) -> JSONBody:
    """One voter with its full source record."""
    return one_or_404(manager, voter_detail, voter_id, "voter")


def _bbox(text: str) -> geojson.BBox:
    try:
        return geojson.BBox.parse(text)
    except ValueError as exc:
        raise ApiError(422, f"bbox: {exc}.", "invalid_bbox", {"bbox": text}) from None


@router.get("/households.geojson", response_model=FeatureCollection, responses=errors(401, 422))
def map_households(
    _: CurrentUser, manager: Manager, bbox: BBoxArg, city: Text = None, zip_code: Text = None,
    precinct: Text = None, linked: Linked = None, job_id: JobFilter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_FEATURES, description=(
        "Most points sent; a view holding more gets grid clusters instead."))] = 2000,
) -> JSONBody:
    """Households with coordinates in the view, as GeoJSON points (or clusters)."""
    # No "geocoded" condition: being in the view needs coordinates, and only
    # a match stores them; the index on (latitude, longitude) then covers the scan.
    flt = household_filter(city, zip_code, precinct, None, linked, job_id)
    box = _bbox(bbox)
    with reading(manager.engine) as conn:
        try:
            return JSONBody(geojson.household_features(conn, box, flt, limit))
        except UnknownJob:
            raise unknown_job(job_id) from None


@router.get("/parcels.geojson", response_model=FeatureCollection, responses=errors(401, 422))
def map_parcels(
    _: CurrentUser, manager: Manager, bbox: BBoxArg,
    linked: Annotated[bool | None, Query(
        description="Only parcels with (true) or without (false) a household.")] = None,
    job_id: JobFilter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_FEATURES, description=(
        "Most polygons sent; a view holding more sends none (zoom in)."))] = 1000,
) -> JSONBody:
    """Parcels overlapping the view, as GeoJSON polygons, with whether a household is linked to each."""
    box = _bbox(bbox)
    with reading(manager.engine) as conn:
        try:
            return JSONBody(geojson.parcel_features(conn, box, limit, linked, job_id))
        except UnknownJob:
            raise unknown_job(job_id) from None
