"""An ordered pipeline: one work function run over a job's inputs in helper processes.

Why: a job type whose batches need CPU-bound preparation (the voter import
parses its rows) can have the next batches prepared in other processes while
the worker writes the current one, so that the two overlap on two cores
instead of taking turns in one. The pipeline knows nothing about what the
work is: it runs one picklable callable, ``work``, over inputs given in
order, each with a key (where its batch starts), and hands the results back
by key, in that order.

What a caller may rely on:

* A result is exactly what ``work(input)`` returns in the worker, so the
  worker can always do the work itself. :meth:`Pipeline.take` returns None
  whenever it cannot give the result for a key (not the next one queued, a
  helper that failed, died or hung), and the caller then calls
  :attr:`Pipeline.work` in-process. After any helper failure the pipeline
  stays ``failed`` and the rest of the run is done in-process.
* A hung helper (alive but not answering: SIGSTOPped, a paused cgroup,
  swapping) does not hold the job type's slot: after ``receive_timeout``
  seconds without its result the helper is killed and :meth:`take` returns
  None, so the work falls back to the worker. We chose the fallback over
  failing the run because the work is pure: the worker's own result is the
  same, and a hang then costs speed, never the job.
* :meth:`Pipeline.close` ends the input, waits a moment for the helpers to
  exit, kills those that do not, and reaps them all: no live child is left.

Helpers are forked from the worker's fork server (:mod:`cocoa.jobs.forkserver`)
and exit at once if the worker dies (a SIGKILLed worker cannot stop them).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any, Generic, TypeVar

from cocoa.jobs.forkserver import exit_with, helper_context
from cocoa.jobs.types import tune_garbage_collector

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

CLOSE_GRACE_SECONDS = 5.0  # a helper finishes the item it holds, then sees the end of its input


class HelperFailed(Exception):
    """A helper's ``work`` raised (a bug: the work should report bad input in
    its result); the message is the helper's exception."""


class HelperHung(Exception):
    """A helper alive but silent for longer than the receive timeout."""


class Pipeline(Generic[In, Out]):
    """Runs ``work`` over ordered inputs in ``helpers`` processes, a few inputs ahead.

    Not thread-safe: one job's thread drives it (as it drives the job).
    """

    def __init__(self, work: Callable[[In], Out], helpers: int, *, receive_timeout: float,
                 name: str = "pipeline") -> None:
        """Starts the helper processes now (forked from the fork server, they
        are ready at once); raises if one cannot start, after stopping the others."""
        self.work = work
        self.name = name
        self.receive_timeout = receive_timeout
        # Inputs in flight: one more than the helpers keeps them all busy
        # (results are taken in order) with little memory.
        self._depth = helpers + 1
        self._inputs: Iterator[tuple[Hashable, In]] | None = None
        self._queue: deque[tuple[Hashable, _Helper]] = deque()
        self._turn = 0  # the helper that gets the next input
        self.failed = False
        self.taken = 0  # results handed over (tests check the helpers were used)
        self._helpers: list[_Helper] = []
        try:
            for _ in range(helpers):
                self._helpers.append(_Helper(work, name))
        except BaseException:
            self.close()  # the helpers started so far
            raise

    @classmethod
    def start(cls, work: Callable[[In], Out], helpers: int, *, receive_timeout: float,
              name: str = "pipeline") -> Pipeline[In, Out] | None:
        """A started pipeline, or None when its helpers cannot start (no fork
        server, no memory): that costs speed, not the job, so it is logged
        and the caller does the work itself."""
        try:
            return cls(work, helpers, receive_timeout=receive_timeout, name=name)
        except Exception as exc:  # noqa: BLE001 - any failure to start leaves the work in-process
            log.warning("%s: helper processes could not start (%s: %s); working in the worker",
                        name, type(exc).__name__, exc)
            return None

    def follow(self, inputs: Iterator[tuple[Hashable, In]]) -> None:
        """Work on ``inputs`` (key, input) from now on, in order; anything
        queued before is dropped. ``inputs`` is pulled lazily, a few ahead of
        :meth:`take`, and closed (``close()``, for a generator) when replaced."""
        self._end_inputs()
        for _, helper in self._queue:
            helper.unwanted += 1
        self._queue.clear()
        self._inputs = inputs
        self._fill()

    def _fill(self) -> None:
        while len(self._queue) < self._depth and self._inputs is not None:
            try:
                key, item = next(self._inputs)
            except StopIteration:
                self._inputs = None
                return
            helper = self._helpers[self._turn % len(self._helpers)]
            self._turn += 1
            self._queue.append((key, helper))
            helper.send(item)

    def take(self, key: Hashable) -> Out | None:
        """The result for ``key`` if it is the next one queued, else None
        (the caller then does the work itself)."""
        if self.failed or not self._queue or self._queue[0][0] != key:
            return None
        _, helper = self._queue.popleft()
        try:
            result: Out = helper.receive(self.receive_timeout)
        except (OSError, EOFError, HelperFailed, HelperHung) as exc:
            log.warning("%s: a helper process failed (%s: %s); working in the worker from now on",
                        self.name, type(exc).__name__, exc)
            if isinstance(exc, HelperHung):
                helper.kill()
            self.failed = True
            self.close()
            return None
        self.taken += 1
        self._fill()
        return result

    def _end_inputs(self) -> None:
        inputs, self._inputs = self._inputs, None
        close = getattr(inputs, "close", None)  # a generator's ``finally`` closes its file
        if close is not None:
            close()

    def close(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """Stop the helpers and reap them: each exits once its input ends
        (after the item it holds); any still alive after ``grace`` seconds
        is killed. Safe to call more than once."""
        self._end_inputs()
        self._queue.clear()
        for helper in self._helpers:
            helper.end_input()
        deadline = time.monotonic() + grace
        for helper in self._helpers:
            helper.join(max(0.0, deadline - time.monotonic()))
        for helper in self._helpers:
            if helper.process.is_alive():
                log.warning("%s: helper process %s did not exit; killed", self.name,
                            helper.process.pid)
                helper.kill()


@dataclass(frozen=True, slots=True)
class _Failure:
    """What a helper sends back instead of a result when ``work`` raised."""

    message: str


class _Helper:
    """One helper process and its two one-way pipes.

    Only the helper holds the far end of each pipe, so a helper that dies,
    even halfway through sending a result, is an end of file or a broken
    pipe here, never a wait. (``concurrent.futures.ProcessPoolExecutor``
    keeps both ends of its result pipe in the parent: a helper killed while
    sending left the worker waiting for the rest of the message forever.)
    Like the executor, two threads here move the bytes, so that the worker
    never waits for a pipe and the helper has one thread only: inputs go out
    as soon as the helper reads them, results are read as soon as it sends them.
    """

    def __init__(self, work: Callable[[Any], Any], name: str) -> None:
        context = helper_context()
        calls_in, self._calls = context.Pipe(duplex=False)
        self._results, results_out = context.Pipe(duplex=False)
        self.process = context.Process(target=_run_helper, name=f"{name}-helper",
                                       args=(work, os.getpid(), calls_in, results_out),
                                       daemon=True)
        try:
            self.process.start()
        except BaseException:
            self._calls.close()
            self._results.close()
            raise
        finally:
            calls_in.close()
            results_out.close()
        self.unwanted = 0  # results still to come for inputs nobody wants now
        self._outgoing: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._received: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for target in (self._send_inputs, self._read_results):
            threading.Thread(target=target, name=f"{name}-helper-io", daemon=True).start()

    def _send_inputs(self) -> None:
        """Until :meth:`end_input` (or the helper is gone)."""
        try:
            while (data := self._outgoing.get()) is not None:
                self._calls.send_bytes(data)
        except OSError:  # the helper is gone: _read_results sees it too
            pass
        finally:
            self._calls.close()

    def _read_results(self) -> None:
        """Until the helper's end of the pipe closes (it exits, or dies)."""
        try:
            while True:
                self._received.put(self._results.recv())
        except (EOFError, OSError) as exc:
            self._received.put(exc)
        finally:
            self._results.close()

    def send(self, item: Any) -> None:
        self._outgoing.put(bytes(ForkingPickler.dumps(item)))

    def receive(self, timeout: float) -> Any:
        """The next wanted result; raises :class:`HelperHung` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = self._received.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise HelperHung(f"no result from process {self.process.pid} "
                                 f"in {timeout:g} s") from None
            if isinstance(result, BaseException):
                self._received.put(result)  # and for any later call
                raise result
            if self.unwanted:
                self.unwanted -= 1
                continue
            if isinstance(result, _Failure):
                raise HelperFailed(result.message)
            return result

    def end_input(self) -> None:
        """The helper exits when its input ends (or at once, with its worker
        gone); the results thread then sees the end of its pipe."""
        self._outgoing.put(None)

    def join(self, timeout: float) -> None:
        self.process.join(timeout)

    def kill(self) -> None:
        """SIGKILL (it also ends a stopped process) and reap."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


def _run_helper(work: Callable[[Any], Any], worker_pid: int, calls: Connection,
                results: Connection) -> None:
    """A helper process: run ``work`` on each input that comes in and send
    the result back, until the worker closes its end. Ctrl-C is left to the
    worker, and the helper exits at once when the worker is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_garbage_collector()
    exit_with(worker_pid)
    try:
        while True:
            item = calls.recv()
            try:
                result = work(item)
            except Exception as exc:  # noqa: BLE001 - reported: the worker does the work instead
                result = _Failure(f"{type(exc).__name__}: {exc}")
            results.send(result)
    except (EOFError, OSError):  # the worker closed its end, or stopped reading
        pass
