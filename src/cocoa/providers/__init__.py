"""Geocoding providers behind one interface (see :mod:`cocoa.providers.base`)."""

from cocoa.providers.base import (
    GeocodeRequest,
    GeocodeResult,
    GeocodeStatus,
    Provider,
    ProviderConfigError,
    ProviderError,
    ProviderOutage,
    ProviderStats,
)
from cocoa.providers.factory import (
    PROVIDER_NAMES,
    UnknownProvider,
    check_config,
    get_provider,
    parse_chain,
)

__all__ = [
    "PROVIDER_NAMES",
    "GeocodeRequest",
    "GeocodeResult",
    "GeocodeStatus",
    "Provider",
    "ProviderConfigError",
    "ProviderError",
    "ProviderOutage",
    "ProviderStats",
    "UnknownProvider",
    "check_config",
    "get_provider",
    "parse_chain",
]
