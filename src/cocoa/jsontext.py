"""JSON text for plain data: orjson's speed with the standard library's reach.

orjson is several times faster than ``json`` for the dicts of scalars the
API returns and the importers store, but refuses a few things ``json``
accepts (integers beyond 64 bits, for one); those fall back to ``json``.
The text is compact and keeps non-ASCII characters as they are.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
