"""The ordered pipeline (:mod:`cocoa.jobs.pipeline`) with real helper processes.

The work functions are builtins (``len``, ``int``): picklable, and importable
in the fork server without this module.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

from tests.conftest import alive, helper_processes

from cocoa.jobs.pipeline import Pipeline


def numbered(count: int) -> Iterator[tuple[int, bytes]]:
    """Inputs keyed 0.. whose ``len`` is their key."""
    return ((i, b"x" * i) for i in range(count))


def test_results_come_back_in_order_and_close_leaves_no_live_child() -> None:
    pipeline: Pipeline[bytes, int] = Pipeline(len, 2, receive_timeout=30)
    pids = [helper.process.pid for helper in pipeline._helpers]
    assert all(pid is not None and alive(pid) for pid in pids)
    pipeline.follow(numbered(12))
    got = [pipeline.take(i) for i in range(12)]
    assert got == list(range(12)) and pipeline.taken == 12 and not pipeline.failed
    pipeline.close()
    assert helper_processes(os.getpid()) == []
    assert not any(alive(pid) for pid in pids if pid is not None)


def test_a_result_for_another_key_is_not_given_and_follow_drops_what_was_queued() -> None:
    pipeline: Pipeline[bytes, int] = Pipeline(len, 1, receive_timeout=30)
    try:
        pipeline.follow(numbered(10))
        assert pipeline.take(3) is None  # not the next one queued: the caller works itself
        pipeline.follow((i, b"y" * (2 * i)) for i in range(5, 10))
        assert [pipeline.take(i) for i in range(5, 10)] == [10, 12, 14, 16, 18]
        assert not pipeline.failed
    finally:
        pipeline.close()
    assert helper_processes(os.getpid()) == []


def test_a_stopped_helper_does_not_stall_the_caller_beyond_the_timeout() -> None:
    """A helper alive but silent (SIGSTOP) is killed after the receive
    timeout, and the caller gets None: it does the work itself."""
    timeout = 1.0
    pipeline: Pipeline[bytes, int] = Pipeline(len, 1, receive_timeout=timeout)
    [helper] = pipeline._helpers
    pid = helper.process.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # before any input: it cannot have answered
    try:
        pipeline.follow(numbered(4))
        started = time.monotonic()
        assert pipeline.take(0) is None
        waited = time.monotonic() - started
        assert timeout <= waited < timeout + 10  # killed after the timeout, not waited on
        assert pipeline.failed and not alive(pid)
        assert pipeline.take(1) is None  # failed for good: the rest is in-process
        assert pipeline.work(b"abc") == 3
    finally:
        pipeline.close()
    assert helper_processes(os.getpid()) == []


def test_close_kills_a_helper_that_does_not_exit() -> None:
    pipeline: Pipeline[bytes, int] = Pipeline(len, 2, receive_timeout=30)
    pipeline.follow(numbered(6))
    assert pipeline.take(0) == 0
    stopped = pipeline._helpers[1].process.pid
    assert stopped is not None
    os.kill(stopped, signal.SIGSTOP)  # cannot see the end of its input
    started = time.monotonic()
    pipeline.close(grace=0.5)
    assert time.monotonic() - started < 10
    assert not alive(stopped) and helper_processes(os.getpid()) == []
    pipeline.close()  # again: nothing left to do, no error


def test_work_that_raises_in_a_helper_leaves_the_work_to_the_caller() -> None:
    pipeline: Pipeline[str, int] = Pipeline(int, 1, receive_timeout=30)
    try:
        pipeline.follow(iter([(0, "12"), (1, "not a number")]))
        assert pipeline.take(0) == 12
        assert pipeline.take(1) is None and pipeline.failed
    finally:
        pipeline.close()
    assert helper_processes(os.getpid()) == []


def test_helpers_that_cannot_start_give_no_pipeline() -> None:
    """A work function the fork server cannot receive (a lambda does not
    pickle): no pipeline, no process left behind; the caller works itself."""
    assert Pipeline.start(lambda item: item, 2, receive_timeout=30) is None
    assert helper_processes(os.getpid()) == []
