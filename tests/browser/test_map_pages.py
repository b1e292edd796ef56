"""Households, the map and job results in a real Chromium, against the real app.

The demo town is loaded through the real engine; tiles are disabled (no
``COCOA_MAP_TILE_URL``), so the map must draw every point and polygon on its
own. Counts come from the database. Every wait is a Playwright ``expect``
with a timeout; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import tests.conftest as root
from tests.browser.test_web import log_in

from cocoa.db.tables import households, jobs, parcels

pytestmark = pytest.mark.browser

with contextlib.suppress(ImportError):  # without it the browser fixture skips (or fails in CI) first
    from playwright.sync_api import Page, expect


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir = tmp_path_factory.mktemp("map_pages")
    with root.demo_server(f"sqlite:///{data_dir / 'cocoa.db'}", data_dir) as server:
        yield server


@pytest.fixture
def server(demo: Any) -> Any:
    """The pages' ``context`` and ``page`` fixtures are on the demo town's server."""
    return demo


def scalar(demo: Any, query: Any) -> Any:
    with demo.engine.connect() as conn:
        return conn.scalar(query)


def test_search_finds_a_household_by_a_misspelt_address(page: Page, demo: Any) -> None:
    with demo.engine.connect() as conn:
        row = conn.execute(sa.select(households.c.id, households.c.street_line)
                           .where(households.c.street_line.like("1% MAIN ST")).limit(1)).one()
    log_in(page, demo, "viewer")
    page.get_by_role("link", name="Households").click()
    page.get_by_label("Search").fill(f"{row.street_line.split()[0]} mian stret")
    page.get_by_role("button", name="Search").click()
    first = page.locator("#households-table a.household-link").first
    expect(first).to_have_text(row.street_line)
    first.click()
    expect(page).to_have_url(re.compile(rf"/households/{row.id}$"))
    expect(page.locator("#household-address")).to_have_text(row.street_line)


def test_map_of_the_demo_town_draws_every_point_and_polygon_without_tiles(page: Page, demo: Any) -> None:
    placed = scalar(demo, sa.select(sa.func.count()).select_from(households)
                    .where(households.c.geocode_status == "matched", households.c.latitude.isnot(None)))
    n_parcels = scalar(demo, sa.select(sa.func.count()).select_from(parcels))
    unplaced = scalar(demo, sa.select(sa.func.count()).select_from(households)
                      .where(households.c.geocode_status.is_distinct_from("matched")))
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    log_in(page, demo, "viewer")
    page.goto(f"{demo.url}/map")
    box = page.locator("#map")
    expect(box).to_have_attribute("data-state", "ready")
    expect(box).to_have_attribute("data-points", str(placed))
    expect(box).to_have_attribute("data-polygons", str(n_parcels))
    assert page.locator("#map path.hh-point").count() == placed
    assert page.locator("#map path.parcel").count() == n_parcels
    assert page.locator("#map img.leaflet-tile").count() == 0  # tiles disabled
    expect(page.locator("#unmatched-total")).to_have_text(str(unplaced))
    assert errors == []  # nothing refused by the Content-Security-Policy, no script error


def test_clicking_a_point_opens_its_household(page: Page, demo: Any) -> None:
    log_in(page, demo, "viewer")
    page.goto(f"{demo.url}/map")
    expect(page.locator("#map")).to_have_attribute("data-state", "ready")
    point = page.locator("#map path.hh-point").last  # drawn last: nothing lies on top of it
    household_id = point.get_attribute("data-id")
    point.click()
    expect(page).to_have_url(re.compile(rf"/households/{household_id}$"))
    expect(page.locator("#map path.hh-focus")).to_have_count(1)  # its own map marks it


def test_viewer_sees_everything_and_changes_nothing(page: Page, demo: Any) -> None:
    geocode = scalar(demo, sa.select(jobs.c.id).where(jobs.c.type == "geocode_households"))
    parcel_job = scalar(demo, sa.select(jobs.c.id).where(jobs.c.type == "parcel_import"))
    jobs_before = scalar(demo, sa.select(sa.func.count()).select_from(jobs))
    log_in(page, demo, "viewer")
    page.goto(f"{demo.url}/jobs/{geocode}")
    page.locator("#job-results-link").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{geocode}/results$"))
    expect(page.locator("#map")).to_have_attribute("data-state", "ready")
    assert int(page.locator("#results-total").inner_text()) > 0
    expect(page.locator("#geocode-again")).to_have_count(0)  # no button for a viewer
    expect(page.locator("#results-csv")).to_be_visible()
    page.goto(f"{demo.url}/jobs/{parcel_job}/results?kind=parcels_without_households")
    expect(page.locator("#map")).to_have_attribute("data-state", "ready")
    # A hand-made POST is refused too.
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    response = page.request.post(f"{demo.url}/results/{geocode}/geocode",
                                 form={"csrf_token": token or "", "provider": "local"})
    assert response.status == 403
    assert scalar(demo, sa.select(sa.func.count()).select_from(jobs)) == jobs_before


def test_admin_geocodes_the_unmatched_with_another_provider(page: Page, demo: Any) -> None:
    geocode = scalar(demo, sa.select(jobs.c.id).where(jobs.c.type == "geocode_households",
                                                      jobs.c.created_by == "demo"))
    log_in(page, demo, "admin")
    page.goto(f"{demo.url}/jobs/{geocode}/results")
    page.get_by_label("Geocode the unmatched households again with").select_option("local")
    page.get_by_role("button", name="Start a geocoding job").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    new_id = page.url.rsplit("/", 1)[1]
    params = scalar(demo, sa.select(jobs.c.params).where(jobs.c.id == new_id))
    assert params["unmatched_in_job"] == geocode and params["provider"] == "local"
