"""A small per-process cache of clustered map answers, exact by data version.

Why: the county-wide view is the one everybody opens first, and grouping
every household in it is the most expensive query of the map (a scan of the
(latitude, longitude) index plus a GROUP BY). Its answer only changes when a
household does, and every write to ``households`` sets ``updated_at`` (new
rows also take a new id), so ``(max(id), max(updated_at))`` - two index
lookups - is a version that changes whenever the answer may. A cached
answer is used only under the same version. One case the version can miss:
a write stamped earlier than the newest ``updated_at`` (a worker host whose
clock is behind); entries also expire after :data:`MAX_AGE_SECONDS`, which
bounds how stale that can make a view.

Not cached: answers filtered by job (whose membership lives in other tables)
and plain points (cheap, and different for every pan).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa

from cocoa.db.tables import households

MAX_ENTRIES = 64
MAX_AGE_SECONDS = 30.0


class ClusterCache:
    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def version(conn: sa.Connection) -> tuple[Any, ...]:
        # Two statements: SQLite answers a lone max() from the index, not two in one.
        return (conn.scalar(sa.select(sa.func.max(households.c.id))),
                str(conn.scalar(sa.select(sa.func.max(households.c.updated_at)))))

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if time.monotonic() - found[0] > MAX_AGE_SECONDS:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: tuple[Any, ...], value: dict[str, Any]) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


clusters = ClusterCache()
