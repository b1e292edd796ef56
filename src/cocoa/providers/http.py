"""One HTTP client for every remote provider: pacing, retries, timeouts.

Policy, in one place so all providers behave alike:

* every attempt (first or retry) takes a token from the job's bucket and
  holds it until the answer (or the failure) is in;
* 429 and 5xx, timeouts and connection errors are retried with exponential
  backoff and jitter; a ``Retry-After`` header (seconds or HTTP-date) wins
  over the computed backoff because the server knows better;
* a ``Retry-After`` longer than the maximum backoff means "come back much
  later": rather than parking a worker thread for an hour we give up at once
  with :class:`ProviderOutage` (the job can be retried later);
* after ``max_retries`` retries the service counts as down:
  :class:`ProviderOutage`. Other 4xx answers are returned to the provider,
  which knows whether they concern one address or the whole service.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from cocoa.providers.base import ProviderOutage, ProviderStats
from cocoa.providers.ratelimit import Sleep, TokenBucket

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """Delay before retry number ``retry`` (0-based): exponential, capped,
        with "equal jitter" (half fixed, half random) so clients that failed
        together do not come back together."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * (2 ** retry))
        return ceiling / 2 + rng() * ceiling / 2


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an
    HTTP-date. ``None`` when absent or unreadable (then backoff applies)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryingClient:
    """A shared ``httpx.Client`` (connection pooling) behind a token bucket.

    Thread-safe: httpx clients are, the bucket is, and the counters are only
    ever incremented (races would at worst miscount a statistic).
    """

    def __init__(
        self, *, service: str, base_url: str, bucket: TokenBucket, timeout: float,
        policy: RetryPolicy, user_agent: str | None = None, sleep: Sleep = time.sleep,
        rng: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": user_agent} if user_agent else {}
        self.service = service
        self.bucket = bucket
        self.policy = policy
        self.stats = ProviderStats()
        self._sleep = sleep
        self._rng = rng
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with pacing and retries; returns any non-retryable response."""
        problem = "no attempt made"
        for attempt in range(self.policy.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            self.stats.requests_sent += 1
            try:
                with self.bucket.slot():  # exit marks completion: see ratelimit
                    response = self._client.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                problem, wait = f"timed out ({type(exc).__name__})", None
            except httpx.TransportError as exc:
                problem, wait = f"connection failed ({exc})", None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                problem = f"answered HTTP {response.status_code}"
                wait = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == self.policy.max_retries:
                break
            self._pause(attempt, wait, problem)
        raise ProviderOutage(
            f"{self.service} {problem}; gave up after {self.policy.max_retries + 1} attempts"
        )

    def _pause(self, attempt: int, retry_after: float | None, problem: str) -> None:
        if retry_after is not None and retry_after > self.policy.max_backoff_seconds:
            raise ProviderOutage(
                f"{self.service} {problem} and asked us to wait {retry_after:.0f} s, "
                f"longer than the maximum backoff of {self.policy.max_backoff_seconds:.0f} s"
            )
        delay = retry_after if retry_after is not None else self.policy.backoff(attempt, self._rng)
        if delay > 0:
            self._sleep(delay)

    def close(self) -> None:
        self._client.close()
