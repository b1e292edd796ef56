"""A thread-safe token bucket that paces requests across a whole job.

Why pacing (capacity 1) by default: a bucket that may fill up lets a burst of
``capacity`` requests through followed by ``rate`` more in the same second,
which breaks "at most N requests in any one-second window" - the rule public
services such as Nominatim actually state. With capacity 1 the bucket hands
out evenly spaced slots.

Why a guard: the limit is judged where requests *arrive*, and arrival times
jitter (thread wake-ups on a loaded host, connection reuse). Slots are spaced
``(1 + guard) / rate`` apart, so N = rate requests span at least
``1 + guard`` seconds: jitter up to ``guard`` *seconds* cannot squeeze an
extra request into any window, at a cost of ``guard`` (as a fraction) of
throughput. :func:`default_guard` buys 100 ms of tolerance at 1 request/s
(where throughput is set by batch size, not request count) and 20 ms from
5 requests/s up (98% of the limit).

Slots are *reserved* under a lock and waited for outside it, so concurrent
callers queue fairly and none can slip in between another's check and send.
Retries take tokens like first attempts: the bucket cannot tell them apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]

DEFAULT_GUARD = 0.02


def default_guard(rate: float) -> float:
    """Jitter tolerance in seconds: generous where it is cheap (low rates)."""
    return min(0.1, max(DEFAULT_GUARD, 0.1 / rate))


class TokenBucket:
    """Hands out send slots at most ``rate`` per second.

    ``clock`` and ``sleep`` are injectable so unit tests run on a fake clock.
    """

    def __init__(
        self, rate: float, *, capacity: int = 1, guard: float = DEFAULT_GUARD,
        clock: Clock = time.monotonic, sleep: Sleep = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if not 0 <= guard < 1:
            raise ValueError(f"guard must be in [0, 1), got {guard}")
        self.rate = rate
        self.capacity = capacity
        self.interval = (1.0 + guard) / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free: float | None = None  # theoretical arrival time (GCRA)
        self.acquired = 0

    def reserve(self) -> float:
        """Claim the next slot and return the clock time at which it opens."""
        with self._lock:
            now = self._clock()
            slack = (self.capacity - 1) * self.interval
            next_free = now if self._next_free is None else self._next_free
            slot = max(now, next_free - slack)
            self._next_free = max(next_free, slot) + self.interval
            self.acquired += 1
            return slot

    def acquire(self) -> float:
        """Block until a token is available; returns the slot time."""
        slot = self.reserve()
        while True:
            wait = slot - self._clock()
            if wait <= 0:
                return slot
            self._sleep(wait)


_SHARED: dict[tuple[str, float, float], TokenBucket] = {}
_SHARED_LOCK = threading.Lock()


def shared_bucket(key: str, rate: float, guard: float | None = None) -> TokenBucket:
    """One bucket per service and rate for the whole process.

    Several provider objects for one service (a job resumed in the same
    worker, a retry of a failed job) must not each get a fresh allowance.
    """
    guard = default_guard(rate) if guard is None else guard
    with _SHARED_LOCK:
        bucket = _SHARED.get((key, rate, guard))
        if bucket is None:
            bucket = _SHARED[(key, rate, guard)] = TokenBucket(rate, guard=guard)
        return bucket
