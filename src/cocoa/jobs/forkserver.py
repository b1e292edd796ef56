"""The fork server that helper processes of job types are forked from.

A job type may do CPU-bound work in other processes while the worker writes
(``import_voters`` parses a batch or two ahead, see
:mod:`cocoa.jobs.pipeline`). A helper started with multiprocessing's
``spawn`` is a fresh interpreter that imports the app again, for every
helper of every job, on a machine where that CPU is what the import is
short of. Instead every helper is forked from multiprocessing's fork server,
which the worker starts when it starts, with the job type modules already
imported: a helper is then ready at once. Forking from that server rather
than from the worker itself keeps the worker's threads and open connections
out of the child.

The server lives as long as the worker process (it exits when the worker
does); each job's helpers are still its own, started and stopped by the job.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import sys
import threading
import time
from collections.abc import Iterable
from multiprocessing.context import ForkServerContext

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("forkserver")
_STARTED = threading.Lock()  # one warm-up per process


def helper_context() -> ForkServerContext:
    """The multiprocessing context job types start their helpers with."""
    return _CONTEXT


def start_helper_server(modules: Iterable[str]) -> None:
    """Start the fork server with ``modules`` imported, and wait until it forks.

    Called by a worker at start-up (in a thread of its own: it takes as long
    as importing the app). Only the first call in a process does anything:
    the server is one per process. The main module is preloaded too, because
    multiprocessing imports it in every child; preloaded, that import is
    already done.
    """
    if not _STARTED.acquire(blocking=False):
        return
    started = time.perf_counter()
    main_name = getattr(getattr(sys.modules["__main__"], "__spec__", None), "name", None)
    preload = ["__main__", *([main_name] if main_name else []), *modules]
    _CONTEXT.set_forkserver_preload(preload)
    try:
        probe = _CONTEXT.Process(target=_nothing, daemon=True)
        probe.start()  # the first fork waits for the server to finish importing
        probe.join()
    except Exception as exc:  # noqa: BLE001 - a job that needs helpers tries again, or parses itself
        log.warning("helper process server could not start (%s: %s)", type(exc).__name__, exc)
        return
    log.info("helper process server ready in %.2fs (preloaded: %s)",
             time.perf_counter() - started, ", ".join(preload))


def _nothing() -> None:
    """A helper that does nothing: proves the server can fork."""


def exit_with(worker_pid: int) -> None:
    """In a helper: exit as soon as the worker ``worker_pid`` is gone.

    A SIGKILLed worker cannot shut its helpers down, and a helper cannot
    watch its parent instead: that is the fork server, which stays up while
    any helper does. The helper waits on a pidfd of the worker (no polling,
    and no confusion with a later process that reuses the pid).
    """
    if not hasattr(os, "pidfd_open"):  # not Linux: poll for the pid instead
        threading.Thread(target=_exit_when_gone, args=(worker_pid,), name="exit-with-worker",
                         daemon=True).start()
        return
    try:
        pidfd = os.pidfd_open(worker_pid)
    except ProcessLookupError:  # gone already
        os._exit(0)
    threading.Thread(target=_exit_when_readable, args=(pidfd,), name="exit-with-worker",
                     daemon=True).start()


def _exit_when_readable(pidfd: int) -> None:
    select.select([pidfd], [], [])  # a pidfd turns readable when its process exits
    os._exit(0)


def _exit_when_gone(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        time.sleep(0.5)
