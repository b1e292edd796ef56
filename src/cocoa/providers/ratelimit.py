"""A thread-safe token bucket that paces requests across a whole job.

Why pacing (capacity 1) by default: a bucket that may fill up lets a burst of
``capacity`` requests through followed by ``rate`` more in the same second,
which breaks "at most N requests in any one-second window" - the rule public
services such as Nominatim actually state. With capacity 1 the bucket hands
out evenly spaced slots (GCRA: a theoretical arrival time per slot).

Why slots alone are not enough: the limit is judged where requests *arrive*,
and on a loaded host a request can leave tens of milliseconds after its slot
(thread wake-up, GIL) while the next one leaves on time. A fixed safety
margin either costs throughput or fails under load. Instead the bucket keeps
a log of the last N = floor(rate) requests and when each one *completed*
(its response came back, or it failed). The server received request i
before it answered it, and request i+N cannot arrive before it is released,
so releasing i+N no earlier than ``completed(i) + 1 s`` proves that no
one-second window at the server ever holds more than N requests - whatever
the jitter. The price is one round-trip time per window of N: small on a
fast link, larger on a slow one, where being conservative is right.

Callers that send a request use :meth:`TokenBucket.slot` (a context manager
whose exit marks completion); :meth:`TokenBucket.acquire` is for callers that
cannot report completion and counts release as completion.

Slots are *reserved* under a lock and waited for outside it, so concurrent
callers queue fairly and none can slip in between another's check and send.
Retries take tokens like first attempts: the bucket cannot tell them apart.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Clock = Callable[[], float]
Sleep = Callable[[float], None]

WINDOW = 1.0  # seconds: "N requests per second" is judged over any such window
IN_FLIGHT_POLL = 0.05  # seconds between checks while waiting for a response


class _Entry:
    """One released request: when it left and when it was known to be done."""

    __slots__ = ("released", "completed")

    def __init__(self, released: float) -> None:
        self.released = released
        self.completed: float | None = None


class TokenBucket:
    """Hands out send slots at most ``rate`` per second.

    ``guard`` (a fraction) spaces slots further apart for extra headroom; the
    completion log already makes the limit hold, so the default is none.
    ``clock`` and ``sleep`` are injectable so unit tests run on a fake clock.
    """

    def __init__(
        self, rate: float, *, capacity: int = 1, guard: float = 0.0,
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
        self._span = WINDOW * (1.0 + guard)
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._next_free: float | None = None  # theoretical arrival time (GCRA)
        # The last ``per_window`` requests (pacing only: a burst bucket has none).
        self.per_window = max(1, int(rate)) if capacity == 1 else 0
        self._log: deque[_Entry] = deque(maxlen=max(1, self.per_window))
        self.acquired = 0

    def reserve(self) -> float:
        """Claim the next slot and return the clock time at which it opens."""
        with self._cond:
            now = self._clock()
            slack = (self.capacity - 1) * self.interval
            next_free = now if self._next_free is None else self._next_free
            slot = max(now, next_free - slack)
            self._next_free = max(next_free, slot) + self.interval
            self.acquired += 1
            return slot

    def acquire(self) -> float:
        """Block until a token is available; returns the release time. The
        request counts as completed at once (use :meth:`slot` to do better)."""
        entry = self._take()
        with self._cond:
            entry.completed = entry.released
            self._cond.notify_all()
        return entry.released

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold a token for the duration of one request; leaving the block
        (normally or by an exception) records when it completed."""
        entry = self._take()
        try:
            yield entry.released
        finally:
            with self._cond:
                entry.completed = self._clock()
                self._cond.notify_all()

    def _take(self) -> _Entry:
        slot = self.reserve()
        while True:
            with self._cond:
                now = self._clock()
                ready = self._ready_at(slot)
                if ready is None:  # the request N back is still in flight
                    self._cond.wait(IN_FLIGHT_POLL)
                    continue
                if now >= ready:
                    entry = _Entry(now)
                    if self.per_window:
                        self._log.append(entry)
                    return entry
            self._sleep(ready - now)

    def _ready_at(self, slot: float) -> float | None:
        """When this slot may be released: its GCRA time, or one window after
        the request ``per_window`` back completed (``None``: not yet known)."""
        if not self.per_window or len(self._log) < self.per_window:
            return slot
        oldest = self._log[0]
        if oldest.completed is None:
            return None
        return max(slot, oldest.completed + self._span)


_SHARED: dict[tuple[str, float], TokenBucket] = {}
_SHARED_LOCK = threading.Lock()


def shared_bucket(key: str, rate: float) -> TokenBucket:
    """One bucket per service and rate for the whole process.

    Several provider objects for one service (a job resumed in the same
    worker, a retry of a failed job) must not each get a fresh allowance.
    """
    with _SHARED_LOCK:
        bucket = _SHARED.get((key, rate))
        if bucket is None:
            bucket = _SHARED[(key, rate)] = TokenBucket(rate)
        return bucket
