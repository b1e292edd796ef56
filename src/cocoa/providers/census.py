"""US Census Geocoder, batch API.

``POST {base}/locations/addressbatch`` with a multipart ``addressFile``: a
headerless ``id,street,city,state,zip`` CSV of at most 10,000 rows, plus
``benchmark=Public_AR_Current``. The reply is a headerless CSV whose rows come
back in *any* order::

    "id","input address","Match","Exact","MATCHED ADDRESS","lon,lat","tigerLineId","L"
    "id","input address","No_Match"
    "id","input address","Tie"

We send our own row numbers as ids (never user text, which could contain
quotes or commas) and map the reply back by id, so order does not matter.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from cocoa.providers.base import (
    GeocodeRequest,
    GeocodeResult,
    ProviderOutage,
    ProviderStats,
    chunked,
)
from cocoa.providers.http import RetryingClient

NAME = "census"
BENCHMARK = "Public_AR_Current"
MAX_BATCH_ROWS = 10_000  # the service's own limit
PATH = "/locations/addressbatch"


def build_address_file(requests: Sequence[GeocodeRequest]) -> bytes:
    """The ``addressFile`` body; row ids are positions in ``requests``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for index, request in enumerate(requests):
        writer.writerow([index, request.street, request.city or "", request.state or "",
                         (request.zip_code or "")[:5]])
    return buffer.getvalue().encode("utf-8")


def parse_reply(text: str, requests: Sequence[GeocodeRequest]) -> list[GeocodeResult]:
    """Map reply rows back to requests by id; a request without a reply row is
    a retryable error (the service dropped it), never a no-match."""
    found: dict[int, GeocodeResult] = {}
    for row in csv.reader(io.StringIO(text)):
        index = _row_index(row, len(requests))
        if index is not None and index not in found:
            found[index] = _parse_row(row, requests[index].id)
    return [
        found.get(i) or GeocodeResult.error(
            r.id, NAME, "Census reply had no row for this address", retryable=True)
        for i, r in enumerate(requests)
    ]


def _row_index(row: list[str], count: int) -> int | None:
    if not row or not row[0].strip().isdigit():
        return None
    index = int(row[0].strip())
    return index if index < count else None


def _parse_row(row: list[str], request_id: str) -> GeocodeResult:
    status = row[2].strip() if len(row) > 2 else ""
    if status == "No_Match":
        return GeocodeResult.no_match(request_id, NAME)
    if status == "Tie":
        return GeocodeResult.tie(request_id, NAME, "Census found several equally good matches")
    if status != "Match" or len(row) < 6:
        return GeocodeResult.error(
            request_id, NAME, f"Census reply row not understood: {row!r:.200}", retryable=False)
    try:
        lon_text, lat_text = row[5].split(",")
        lon, lat = float(lon_text), float(lat_text)
    except ValueError:
        return GeocodeResult.error(
            request_id, NAME, f"Census reply coordinates not understood: {row[5]!r:.100}",
            retryable=False)
    return GeocodeResult.matched(request_id, NAME, lat, lon, quality=row[3].strip() or None,
                                 matched_address=row[4].strip() or None)


class CensusProvider:
    """Sends ``batch_size`` addresses per POST; one bucket token per attempt."""

    name = NAME

    def __init__(self, client: RetryingClient, batch_size: int = 1000,
                 benchmark: str = BENCHMARK) -> None:
        self.client = client
        self.batch_size = max(1, min(batch_size, MAX_BATCH_ROWS))
        self.benchmark = benchmark

    @property
    def stats(self) -> ProviderStats:
        return self.client.stats

    def geocode(self, requests: Sequence[GeocodeRequest]) -> list[GeocodeResult]:
        results: list[GeocodeResult] = []
        for chunk in chunked(requests, self.batch_size):
            try:
                results.extend(self._geocode_chunk(chunk))
            except ProviderOutage as exc:
                raise ProviderOutage(exc.message, partial=results) from exc
        return results

    def _geocode_chunk(self, chunk: Sequence[GeocodeRequest]) -> list[GeocodeResult]:
        response = self.client.request(
            "POST", PATH, data={"benchmark": self.benchmark},
            files={"addressFile": ("addresses.csv", build_address_file(chunk), "text/csv")},
        )
        if response.status_code in (401, 403):
            raise ProviderOutage(f"census refused the request (HTTP {response.status_code})")
        if response.status_code != 200:
            message = f"Census answered HTTP {response.status_code}: {response.text[:200]}"
            return [GeocodeResult.error(r.id, NAME, message, retryable=False) for r in chunk]
        return parse_reply(response.text, chunk)

    def close(self) -> None:
        self.client.close()
