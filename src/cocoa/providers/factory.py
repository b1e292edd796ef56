"""Build a provider (or a chain) from its name and the settings.

Settings the provider needs but :mod:`cocoa.config` does not (yet) define are
read with :func:`setting`, falling back to the defaults below, so adding e.g.
``COCOA_NOMINATIM_CONCURRENCY`` to ``Settings`` later needs no change here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import sqlalchemy as sa

from cocoa.providers import nominatim
from cocoa.providers.base import Provider, ProviderConfigError
from cocoa.providers.census import CensusProvider
from cocoa.providers.chain import ChainProvider
from cocoa.providers.http import RetryingClient, RetryPolicy
from cocoa.providers.local import LocalProvider
from cocoa.providers.nominatim import NominatimProvider
from cocoa.providers.ratelimit import Sleep, shared_bucket

if TYPE_CHECKING:
    from cocoa.config import Settings

PROVIDER_NAMES = ("local", "census", "nominatim")
DEFAULT_PROVIDER = "local"

class UnknownProvider(ProviderConfigError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Unknown geocoding provider {name!r}; valid providers: "
            f"{', '.join(PROVIDER_NAMES)} (or a comma-separated chain such as 'local,census')"
        )
        self.valid = list(PROVIDER_NAMES)


def parse_chain(spec: str | None) -> list[str]:
    """``"local, census"`` -> ``["local", "census"]``; rejects unknown, empty
    and repeated names (asking a service twice cannot give a new answer)."""
    names = [n.strip().lower() for n in (spec or DEFAULT_PROVIDER).split(",")]
    for name in names:
        if name not in PROVIDER_NAMES:
            raise UnknownProvider(name)
    if len(set(names)) != len(names):
        raise ProviderConfigError(f"Provider chain {spec!r} names a provider twice")
    return names


def check_config(names: list[str], settings: Settings) -> None:
    """Everything that can be refused before a job is even created."""
    if "nominatim" in names:
        nominatim.check_config(settings.nominatim_base_url, settings.nominatim_user_agent)


def get_provider(
    name_or_chain: str, settings: Settings, engine: sa.Engine | None = None, *,
    sleep: Sleep = time.sleep, transport: httpx.BaseTransport | None = None,
) -> ChainProvider:
    """Always a :class:`ChainProvider` (one stage or several), so callers get
    dedupe and memo whatever they asked for."""
    names = parse_chain(name_or_chain)
    check_config(names, settings)
    return ChainProvider([_build(n, settings, engine, sleep, transport) for n in names])


def _build(
    name: str, settings: Settings, engine: sa.Engine | None, sleep: Sleep,
    transport: httpx.BaseTransport | None,
) -> Provider:
    if name == "local":
        if engine is None:
            raise ProviderConfigError("The local provider needs a database engine")
        return LocalProvider(engine)
    if name == "census":
        client = _client("census", settings.census_base_url, settings.census_rate_per_second,
                         settings.census_timeout_seconds, None, settings, sleep, transport)
        return CensusProvider(client, settings.census_batch_size,
                              settings.census_benchmark)
    base = settings.nominatim_base_url
    public = nominatim.is_public_instance(base)
    rate = nominatim.effective_rate(base, settings.nominatim_rate_per_second)
    client = _client("nominatim", base, rate, settings.nominatim_timeout_seconds,
                     settings.nominatim_user_agent, settings, sleep, transport)
    concurrency = 1 if public else settings.nominatim_concurrency
    return NominatimProvider(client, concurrency)


def _client(
    service: str, base_url: str, rate: float, timeout: float, user_agent: str | None,
    settings: Settings, sleep: Sleep, transport: httpx.BaseTransport | None,
) -> RetryingClient:
    policy = RetryPolicy(settings.provider_max_retries, settings.provider_backoff_seconds,
                         settings.provider_max_backoff_seconds)
    return RetryingClient(
        service=service, base_url=base_url, bucket=shared_bucket(f"{service} {base_url}", rate),
        timeout=timeout, policy=policy, user_agent=user_agent, sleep=sleep,
        transport=transport,
    )
