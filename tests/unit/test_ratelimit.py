"""The token bucket, on a fake clock (exact) and a real one (threads)."""

from __future__ import annotations

import threading
import time

import pytest

from cocoa.providers.ratelimit import TokenBucket, shared_bucket  # noqa: E402
from stubs.geocoder_stub import max_per_window  # noqa: E402


class FakeClock:
    """Time only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_never_exceeded_in_any_one_second_window() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    times = [bucket.acquire() for _ in range(200)]
    assert max_per_window(times) == 10
    assert all(b - a >= 1.0 for a, b in zip(times, times[10:], strict=False))


def test_achieved_rate_is_close_to_the_limit() -> None:
    clock = FakeClock()
    bucket = TokenBucket(20, clock=clock, sleep=clock.sleep)
    times = [bucket.acquire() for _ in range(401)]
    achieved = 400 / (times[-1] - times[0])
    assert 0.97 * 20 <= achieved <= 20


def test_first_token_is_immediate_and_idle_time_does_not_bank_a_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)
    assert bucket.acquire() == 1000.0
    clock.now += 60  # idle for a minute
    first = bucket.acquire()
    second = bucket.acquire()
    assert first == 1060.0
    assert second - first == pytest.approx(bucket.interval)


def test_capacity_allows_a_burst_then_paces() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, capacity=3, guard=0.0, clock=clock, sleep=clock.sleep)
    times = [bucket.acquire() for _ in range(5)]
    assert times[:3] == [1000.0] * 3
    assert times[3] == pytest.approx(1000.5)
    assert times[4] == pytest.approx(1001.0)


def test_a_late_wake_up_does_not_squeeze_extra_requests_into_a_window() -> None:
    """Every 7th sleep overshoots by 50 ms, as on a loaded host. Slots alone
    would then put 21 releases within one second; the release log does not."""
    clock = FakeClock()
    calls = 0

    def oversleep(seconds: float) -> None:
        nonlocal calls
        calls += 1
        clock.sleep(seconds + (0.05 if calls % 7 == 0 else 0.0))

    bucket = TokenBucket(20, clock=clock, sleep=oversleep)
    times = [bucket.acquire() for _ in range(300)]
    assert max_per_window(times) <= 20
    assert 300 / (times[-1] - times[0]) >= 0.95 * 20


def test_next_window_starts_when_the_request_n_back_completed() -> None:
    """Request i+N may not leave before request i was answered + 1 s: the
    server got i before answering, so no window at the server holds N+1."""
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)
    released, completed = [], []
    for i in range(30):
        with bucket.slot() as granted:
            released.append(granted)
            clock.now += 0.3 if i % 4 == 0 else 0.01  # the round trip
        completed.append(clock.now)
    assert all(released[i + 5] >= completed[i] + 1.0 for i in range(25))
    assert max_per_window(released) <= 5


def test_a_request_still_in_flight_holds_the_window() -> None:
    bucket = TokenBucket(1)  # real clock, N = 1
    entered = threading.Event()
    finish = threading.Event()
    second: list[float] = []

    def first_request() -> None:
        with bucket.slot():
            entered.set()
            finish.wait(5)

    thread = threading.Thread(target=first_request)
    thread.start()
    assert entered.wait(5)
    waiter = threading.Thread(target=lambda: second.append(bucket.acquire()))
    waiter.start()
    waiter.join(timeout=1.5)  # 1 s of pacing has passed: only the open request holds it
    assert waiter.is_alive() and not second
    done_at = time.monotonic()
    finish.set()
    waiter.join(timeout=5)
    thread.join(timeout=5)
    assert second and second[0] >= done_at + 1.0 - 0.01


def test_threads_share_one_allowance() -> None:
    bucket = TokenBucket(40)  # real clock: 80 tokens take ~2 s
    released: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            granted = bucket.acquire()
            with lock:
                released.append(granted)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(released) == 80 and bucket.acquired == 80
    assert max_per_window(released) <= 40


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"rate": -1}, {"rate": 1, "capacity": 0},
                                    {"rate": 1, "guard": 1.5}])
def test_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TokenBucket(**kwargs)  # type: ignore[arg-type]


def test_shared_bucket_is_one_per_service_and_rate() -> None:
    a = shared_bucket("svc http://x", 3.0)
    assert shared_bucket("svc http://x", 3.0) is a
    assert shared_bucket("svc http://x", 4.0) is not a
    assert shared_bucket("other http://x", 3.0) is not a
