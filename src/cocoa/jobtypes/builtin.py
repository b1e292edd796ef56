"""The job types that ship with Cocoa, registered by the composition roots.

The engine (:mod:`cocoa.jobs`) knows job types only through its registry;
which types exist is decided here and registered by whoever assembles the
program - the app factory, the CLI, a benchmark, the test suite - so the
engine never names the modules that sit above it.
"""

from __future__ import annotations

import importlib
import threading

BUILTIN_MODULES = (
    "cocoa.jobtypes.noop",
    "cocoa.jobtypes.import_voters",
    "cocoa.jobtypes.parcel_import",
    "cocoa.jobtypes.geocode_households",
)

_registered = False
_lock = threading.RLock()  # re-entrant: a type module may look up types on import


def register_builtin_types() -> None:
    """Import the built-in job type modules; each registers its type.

    Idempotent and thread-safe: the flag is set only after every module has
    registered, so a second thread never sees "registered" while the first
    is still importing (and fails with "Unknown job type").
    """
    global _registered
    if _registered:
        return
    with _lock:
        if _registered:
            return
        for module in BUILTIN_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:  # a type still being built is simply absent
                if exc.name != module:
                    raise
        _registered = True
