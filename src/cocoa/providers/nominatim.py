"""Nominatim ``/search``, one structured request per address.

The public instance (``nominatim.openstreetmap.org``) has a usage policy we
enforce in code rather than in documentation: a real identifying User-Agent
(we refuse to start without one, and stock library agents are refused by the
service anyway) and at most one request per second for the whole
application, whatever the configuration says. Self-hosted instances have no
such limits and may use several requests in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from cocoa.providers.base import (
    GeocodeRequest,
    GeocodeResult,
    ProviderConfigError,
    ProviderOutage,
    ProviderStats,
)
from cocoa.providers.http import RetryingClient

NAME = "nominatim"
PUBLIC_HOST = "nominatim.openstreetmap.org"
PUBLIC_MAX_RATE = 1.0
STOCK_AGENTS = ("python-httpx", "python-requests", "python-urllib", "curl/", "wget/")


def is_public_instance(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower().rstrip(".")
    return host == PUBLIC_HOST or host.endswith("." + PUBLIC_HOST)


def check_config(base_url: str, user_agent: str | None) -> None:
    """Refuse the public instance without a real User-Agent (clear message)."""
    if not is_public_instance(base_url):
        return
    agent = (user_agent or "").strip()
    if not agent or agent.lower().startswith(STOCK_AGENTS):
        raise ProviderConfigError(
            "The public Nominatim instance (nominatim.openstreetmap.org) requires an "
            "identifying User-Agent, e.g. 'cocoa-canvas/1.0 (you@example.org)'. Set "
            "COCOA_NOMINATIM_USER_AGENT, or point COCOA_NOMINATIM_BASE_URL at a "
            "self-hosted instance."
        )


def effective_rate(base_url: str, configured: float) -> float:
    """The public instance never gets more than 1 request/s."""
    return min(configured, PUBLIC_MAX_RATE) if is_public_instance(base_url) else configured


def search_params(request: GeocodeRequest) -> dict[str, str]:
    params = {"street": request.street, "format": "jsonv2", "limit": "1"}
    for name, value in (("city", request.city), ("state", request.state),
                        ("postalcode", (request.zip_code or "")[:5])):
        if value:
            params[name] = value
    # The exact order the service documents; the dict keeps insertion order.
    ordered = ("street", "city", "state", "postalcode", "format", "limit")
    return {k: params[k] for k in ordered if k in params}


def parse_search(payload: Any, request_id: str) -> GeocodeResult:
    if not isinstance(payload, list):
        return GeocodeResult.error(request_id, NAME, "Nominatim reply was not a JSON list",
                                   retryable=True)
    if not payload:
        return GeocodeResult.no_match(request_id, NAME)
    place = payload[0]
    try:
        lat, lon = float(place["lat"]), float(place["lon"])
    except (KeyError, TypeError, ValueError):
        return GeocodeResult.error(request_id, NAME, "Nominatim reply had no usable lat/lon",
                                   retryable=False)
    quality = ":".join(str(place[k]) for k in ("category", "type") if place.get(k)) or None
    return GeocodeResult.matched(request_id, NAME, lat, lon, quality=quality,
                                 matched_address=place.get("display_name"))


class NominatimProvider:
    """``concurrency`` requests in flight at most; the bucket sets the pace."""

    name = NAME

    def __init__(self, client: RetryingClient, concurrency: int = 1) -> None:
        self.client = client
        self.concurrency = max(1, concurrency)

    @property
    def stats(self) -> ProviderStats:
        return self.client.stats

    def geocode(self, requests: Sequence[GeocodeRequest]) -> list[GeocodeResult]:
        if self.concurrency == 1 or len(requests) < 2:
            return self._sequential(requests)
        return self._concurrent(requests)

    def _sequential(self, requests: Sequence[GeocodeRequest]) -> list[GeocodeResult]:
        results: list[GeocodeResult] = []
        for request in requests:
            try:
                results.append(self._one(request))
            except ProviderOutage as exc:
                raise ProviderOutage(exc.message, partial=results) from exc
        return results

    def _concurrent(self, requests: Sequence[GeocodeRequest]) -> list[GeocodeResult]:
        results: list[GeocodeResult] = []
        outage: ProviderOutage | None = None
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="nominatim") as pool:
            futures = [pool.submit(self._one, r) for r in requests]
            for future in futures:
                try:
                    results.append(future.result())
                except ProviderOutage as exc:
                    # Keep the in-order prefix; requests not yet started are dropped.
                    outage = exc
                    for pending in futures:
                        pending.cancel()
                    break
        if outage is not None:
            raise ProviderOutage(outage.message, partial=results)
        return results

    def _one(self, request: GeocodeRequest) -> GeocodeResult:
        response = self.client.request("GET", "/search", params=search_params(request))
        if response.status_code in (401, 403):
            raise ProviderOutage(
                f"nominatim refused us (HTTP {response.status_code}); check the "
                "User-Agent and the instance's usage policy")
        if response.status_code != 200:
            return GeocodeResult.error(
                request.id, NAME, f"Nominatim answered HTTP {response.status_code}",
                retryable=False)
        try:
            payload = response.json()
        except ValueError:
            return GeocodeResult.error(request.id, NAME, "Nominatim reply was not JSON",
                                       retryable=True)
        return parse_search(payload, request.id)

    def close(self) -> None:
        self.client.close()
