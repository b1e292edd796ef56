"""Running one Uvicorn server that exits 0 after a graceful stop.

Uvicorn catches SIGTERM/SIGINT, shuts down (the app's lifespan stops the
embedded worker after its current batch and hands the job back), and then
raises the same signal again so that the process dies "of" it: exit status
143 for SIGTERM, which ``make`` reports as "Terminated" and supervisors may
count as a crash. ``cocoa worker`` exits 0 after the same graceful stop, and
``cocoa serve`` promises to as well, so its server keeps the handlers for the
duration of the run and does not re-raise.

With ``--processes N`` Uvicorn's supervisor process stops its children and
returns normally, so only the single-process server needs this.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from uvicorn.main import STARTUP_FAILURE

HANDLED = (signal.SIGINT, signal.SIGTERM)


class GracefulServer(uvicorn.Server):
    """A :class:`uvicorn.Server` whose SIGTERM/SIGINT end the run, not the process."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals can only be handled in the main thread
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def run(app: Any, **options: Any) -> None:
    """Like :func:`uvicorn.run` for one process: returns after a graceful stop,
    exits with Uvicorn's start-up failure status (3) when it never started
    (the port is taken, the lifespan failed)."""
    server = GracefulServer(uvicorn.Config(app, **options))
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
