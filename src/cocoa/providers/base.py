"""The provider interface: what every geocoder answers, per address.

Providers differ wildly (an offline table lookup, a 10,000-row CSV upload, one
JSON request per address) but the job only ever sees this module: a batch of
:class:`GeocodeRequest` in, one :class:`GeocodeResult` per request out. The
distinction that matters most is kept explicit here: a *no match* is a fact
about an address, a :class:`ProviderOutage` is a fact about the service and
must never be recorded against an address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class GeocodeStatus(StrEnum):
    """Stored verbatim in ``households.geocode_status``."""

    MATCHED = "matched"
    NO_MATCH = "no_match"
    TIE = "tie"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class GeocodeRequest:
    """One address to geocode.

    ``street`` is the delivery line *without* the unit: remote geocoders place
    buildings, not apartments, so every unit of a building is one request.
    ``keys`` are the household's normalised keys (the stored one and, if the
    normaliser has changed since, the fresh one); ``building_key`` is the key
    without the unit, ``None`` when the address has no unit. Only the offline
    provider uses keys.
    """

    id: str
    street: str
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None
    keys: tuple[str, ...] = ()
    building_key: str | None = None

    @property
    def all_keys(self) -> tuple[str, ...]:
        return (*self.keys, self.building_key) if self.building_key else self.keys

    @property
    def query_key(self) -> str:
        """What makes two requests the same question for a remote geocoder."""
        zip5 = (self.zip_code or "").strip()[:5]
        parts = (self.street, self.city or "", self.state or "", zip5)
        return "|".join(" ".join(p.upper().split()) for p in parts)


@dataclass(frozen=True, slots=True)
class GeocodeResult:
    """The answer for one request; build it with the class-method constructors."""

    id: str
    status: GeocodeStatus
    provider: str
    latitude: float | None = None
    longitude: float | None = None
    quality: str | None = None
    matched_address: str | None = None
    message: str | None = None
    retryable: bool = False

    @classmethod
    def matched(
        cls, id: str, provider: str, latitude: float, longitude: float,
        quality: str | None = None, matched_address: str | None = None,
    ) -> GeocodeResult:
        return cls(id, GeocodeStatus.MATCHED, provider, latitude, longitude, quality,
                   matched_address)

    @classmethod
    def no_match(cls, id: str, provider: str) -> GeocodeResult:
        return cls(id, GeocodeStatus.NO_MATCH, provider)

    @classmethod
    def tie(cls, id: str, provider: str, message: str | None = None) -> GeocodeResult:
        return cls(id, GeocodeStatus.TIE, provider, message=message)

    @classmethod
    def error(
        cls, id: str, provider: str, message: str, *, retryable: bool
    ) -> GeocodeResult:
        return cls(id, GeocodeStatus.ERROR, provider, message=message, retryable=retryable)

    def with_id(self, id: str) -> GeocodeResult:
        """The same answer for another request asking the same question."""
        return GeocodeResult(id, self.status, self.provider, self.latitude, self.longitude,
                             self.quality, self.matched_address, self.message,
                             self.retryable)


@dataclass(slots=True)
class ProviderStats:
    """Counters a job adds to its result; read deltas around each call."""

    requests_sent: int = 0  # HTTP attempts, retries included
    retries: int = 0
    cache_hits: int = 0  # requests answered from the job's memo


class ProviderError(Exception):
    """Base class of the job-level provider failures below."""


class ProviderConfigError(ProviderError):
    """The provider cannot be used as configured (e.g. public Nominatim without
    a User-Agent). Raised before any request is sent."""


class ProviderOutage(ProviderError):
    """The service is down (or refusing us) past the retry budget.

    Never a no-match: the addresses were not judged. ``partial`` holds the
    results that were complete before the outage so a caller can keep them.
    """

    def __init__(self, message: str, partial: Sequence[GeocodeResult] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.partial: list[GeocodeResult] = list(partial)


class Provider(Protocol):
    """Geocodes a batch; returns exactly one result per request (any order).

    Raises :class:`ProviderOutage` when the service is unavailable past the
    retry budget. Per-address problems are results, never exceptions.
    """

    name: str

    @property
    def stats(self) -> ProviderStats: ...

    def geocode(self, requests: Sequence[GeocodeRequest]) -> list[GeocodeResult]: ...

    def close(self) -> None: ...


def chunked(items: Sequence[GeocodeRequest], size: int) -> list[Sequence[GeocodeRequest]]:
    """Split a batch into provider-sized requests, keeping input order."""
    step = max(1, size)
    return [items[i:i + step] for i in range(0, len(items), step)]
