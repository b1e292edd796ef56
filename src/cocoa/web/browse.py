"""The web pages for what jobs produced: Households, one household, the Map,
and a job's results.

Read-only for everyone logged in; the one write is "geocode these with
another provider" on a geocoding job's results, which creates a geocoding
job and so needs what creating one needs (admin, CSRF token). Lists are
rendered on the server (autoescaped); the map is drawn by
``static/map.js`` with Leaflet, served from the installed npm package at
``/vendor/leaflet/`` (no CDN), from the GeoJSON endpoints of
:mod:`cocoa.api.households_routes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.staticfiles import StaticFiles

from cocoa.browse import geojson
from cocoa.browse.filters import HouseholdFilter, UnknownJob, job_type
from cocoa.browse.households import household_detail, list_households
from cocoa.browse.results import NoResults, kinds_for, result_page
from cocoa.config import Settings
from cocoa.db.engine import reading
from cocoa.db.tables import parcels
from cocoa.jobs.types import JobValidationError
from cocoa.web import routes, security, start

HOUSEHOLDS_PER_PAGE = 50
UNMATCHED_BESIDE_MAP = 50
RESULTS_PER_PAGE = 50
CHECKOUT = Path(__file__).resolve().parents[3]
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")

router = APIRouter(include_in_schema=False)


def library_dir(settings: Settings) -> Path:
    return settings.map_library_dir or CHECKOUT / "node_modules" / "leaflet" / "dist"


def mount(app: FastAPI) -> None:
    """Called by ``create_app`` before the Jobs pages: Leaflet and the pages."""
    settings: Settings = app.state.settings
    directory = library_dir(settings)
    if directory.is_dir():
        app.mount("/vendor/leaflet", StaticFiles(directory=directory), name="leaflet")
    app.include_router(router)


# --------------------------------------------------------------------------- helpers


def _engine(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.manager.engine
    return engine


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """``routes.render`` plus the map's needs: the tile server's origin in
    ``img-src`` (nothing else is loosened: scripts and styles stay 'self')."""
    settings = _settings(request)
    context = {**context, "tile_url": settings.map_tile_url, "tile_attribution": settings.map_tile_attribution,
               "leaflet": library_dir(settings).is_dir()}
    response = routes.render(request, name, context, status)
    origin = _origin(settings.map_tile_url)
    if origin:
        policy = response.headers["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = policy.replace("img-src 'self' data:",
                                                                     f"img-src 'self' data: {origin}")
    return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


def _flag(value: str | None) -> bool | None:
    word = (value or "").strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def _text(request: Request, name: str, size: int = 128) -> str | None:
    value = request.query_params.get(name, "").replace("\x00", "").strip()[:size]
    return value or None


def _filter(request: Request) -> HouseholdFilter:
    return HouseholdFilter(city=_text(request, "city"), zip_code=_text(request, "zip_code"),
                           precinct=_text(request, "precinct"), geocoded=_flag(request.query_params.get("geocoded")),
                           linked=_flag(request.query_params.get("linked")), job_id=_text(request, "job_id", 64))


def _page_number(request: Request) -> int:
    value = request.query_params.get("page", "")
    return max(1, min(int(value[:9]), 10_000_000)) if value.isascii() and value.isdigit() else 1


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def map_urls(flt: HouseholdFilter, parcels_of_job: str | None = None) -> dict[str, str]:
    """The GeoJSON URLs the map fetches (the view's bbox is appended by map.js)."""
    points = {k: v for k, v in flt.query_args().items() if k != "geocoded"}
    parcels: dict[str, str] = {"job_id": parcels_of_job} if parcels_of_job else {}
    if flt.linked is not None:
        parcels["linked"] = "true" if flt.linked else "false"
    return {"households_url": "/api/v1/households.geojson?" + urlencode(points),
            "parcels_url": "/api/v1/parcels.geojson?" + urlencode(parcels)}


def _bounds(box: geojson.BBox | None) -> str:
    return "" if box is None else f"{box.west},{box.south},{box.east},{box.north}"


# --------------------------------------------------------------------------- households


@router.get("/households", response_class=HTMLResponse)
def households_page(request: Request) -> Response:
    if security.current_user(request) is None:
        return routes.to_login(request)
    flt, q, number = _filter(request), _text(request, "q", 200), _page_number(request)
    try:
        with reading(_engine(request)) as conn:
            found, total = list_households(conn, flt, q, HOUSEHOLDS_PER_PAGE, (number - 1) * HOUSEHOLDS_PER_PAGE)
    except UnknownJob:
        return routes.error_page(request, 404, "Job not found", f"There is no job with id {flt.job_id}.")
    args = {**flt.query_args(), **({"q": q} if q else {})}
    return page(request, "households.html", {
        "active": "households", "households": found, "total": total, "page": number,
        "pages": _pages(total, HOUSEHOLDS_PER_PAGE), "q": q or "", "flt": flt, "args": args,
        "query": urlencode(args), "map_query": urlencode(flt.query_args())})


@router.get("/households/{household_id}", response_class=HTMLResponse)
def household_page(request: Request, household_id: str) -> Response:
    if security.current_user(request) is None:
        return routes.to_login(request)
    found = None
    if household_id.isascii() and household_id.isdigit() and 0 < int(household_id[:10]) < 2**31:
        with reading(_engine(request)) as conn:
            found = household_detail(conn, int(household_id))
    if found is None:
        return routes.error_page(request, 404, "Household not found", f"There is no household {household_id[:20]!r}.")
    box = None
    if found["latitude"] is not None:
        pad = 0.002
        box = geojson.BBox(found["longitude"] - pad, found["latitude"] - pad, found["longitude"] + pad,
                           found["latitude"] + pad)
    elif found["parcel"]:
        p = found["parcel"]
        box = geojson.BBox(p["rep_lon"] - 0.002, p["rep_lat"] - 0.002, p["rep_lon"] + 0.002, p["rep_lat"] + 0.002)
    return page(request, "household.html", {
        "active": "households", "h": found, "bounds": _bounds(box), **map_urls(HouseholdFilter())})


# --------------------------------------------------------------------------- map


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request) -> Response:
    if security.current_user(request) is None:
        return routes.to_login(request)
    flt = _filter(request)
    unmatched_filter = HouseholdFilter(**{**_fields(flt), "geocoded": False})
    try:
        with reading(_engine(request)) as conn:
            box = geojson.extent(conn, flt)
            unmatched, unmatched_total = list_households(conn, unmatched_filter, None, UNMATCHED_BESIDE_MAP, 0)
    except UnknownJob:
        return routes.error_page(request, 404, "Job not found", f"There is no job with id {flt.job_id}.")
    return page(request, "map.html", {
        "active": "map", "flt": flt, "bounds": _bounds(box), "unmatched": unmatched,
        "unmatched_total": unmatched_total, "unmatched_query": urlencode(unmatched_filter.query_args()),
        **map_urls(flt)})


def _fields(flt: HouseholdFilter) -> dict[str, Any]:
    return {name: getattr(flt, name) for name in flt.__slots__}


# --------------------------------------------------------------------------- job results


@router.get("/jobs/{job_id}/results", response_class=HTMLResponse)
def results_page(request: Request, job_id: str) -> Response:
    user = security.current_user(request)
    if user is None:
        return routes.to_login(request)
    number = _page_number(request)
    kind = _text(request, "kind", 64)
    flt = HouseholdFilter(job_id=job_id[:64])
    try:
        with reading(_engine(request)) as conn:
            type_name, kinds = kinds_for(conn, job_id[:64])
            listing = (result_page(conn, job_id, kind, RESULTS_PER_PAGE, (number - 1) * RESULTS_PER_PAGE)
                       if kinds else None)
            box = geojson.extent(conn, flt)
            if box is None and type_name == "parcel_import":
                box = _parcel_extent(conn, job_id)
    except UnknownJob:
        return routes.error_page(request, 404, "Job not found", f"There is no job with id {job_id[:64]}.")
    except NoResults as exc:
        return routes.error_page(request, 404, "No such list", str(exc))
    total = listing["total"] if listing else 0
    return page(request, "job_results.html", {
        "active": "jobs", "job_id": job_id, "job_type": type_name, "listing": listing,
        "page": number, "pages": _pages(total, RESULTS_PER_PAGE), "bounds": _bounds(box),
        "providers": start.PROVIDERS, "can_geocode": user.is_admin and type_name == "geocode_households",
        **map_urls(flt, parcels_of_job=job_id)})


def _parcel_extent(conn: sa.Connection, job_id: str) -> geojson.BBox | None:
    row = conn.execute(sa.select(sa.func.min(parcels.c.min_lon), sa.func.min(parcels.c.min_lat),
                                 sa.func.max(parcels.c.max_lon), sa.func.max(parcels.c.max_lat))
                       .where(parcels.c.import_job_id == job_id)).first()
    return None if row is None or row[0] is None else geojson.BBox(*(float(v) for v in row))


@router.post("/results/{job_id}/geocode")
async def geocode_again(request: Request, job_id: str) -> Response:
    """Start a geocoding job over what this geocoding job left unmatched,
    with the provider chosen in the form."""
    checked = await routes.admin_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    provider = str(form.get("provider") or "")
    if provider not in start.PROVIDERS:
        security.flash(request, f"Choose a provider: {', '.join(start.PROVIDERS)}.", "error")
        return RedirectResponse(f"/jobs/{job_id[:64]}/results", status_code=303)
    return await run_in_threadpool(_create_geocode_job, request, job_id[:64], provider, user.username)


def _create_geocode_job(request: Request, job_id: str, provider: str, username: str) -> Response:
    with reading(_engine(request)) as conn:
        try:
            if job_type(conn, job_id) != "geocode_households":
                return routes.error_page(request, 404, "Not a geocoding job", "Only a geocoding job's "
                                         "unmatched households can be geocoded again.")
        except UnknownJob:
            return routes.error_page(request, 404, "Job not found", f"There is no job with id {job_id}.")
    try:
        job = request.app.state.manager.create(
            "geocode_households", {"unmatched_in_job": job_id, "provider": provider, "only_missing": True},
            created_by=username)
    except JobValidationError as exc:
        security.flash(request, exc.message, "error")
        return RedirectResponse(f"/jobs/{job_id}/results", status_code=303)
    security.flash(request, f"Geocoding the unmatched households of job {job_id[:8]} with {provider}.")
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
