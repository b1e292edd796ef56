"""What a job's uploaded file was: the ``input`` of the public job object.

``{filename, bytes, compressed, layout}`` tells two imports of two counties
apart on the Jobs page. It is recorded in the job's ``result`` when the job
is created (``result["input"]``), so listings read no other table; the
layout is the one validation detected (``params["format"]``), and a job that
learns it later sets ``result["layout"]``, which wins.

``compressed`` is ``"zip"``, ``"gzip"`` or null: from the file's first bytes
(magic numbers), else from its name - the one helper upload code calls
(:func:`compression_of`).
"""

from __future__ import annotations

from typing import IO, Any

import sqlalchemy as sa

from cocoa.db.tables import uploads

INPUT_KEY = "input"  # result[INPUT_KEY]
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"))
_SUFFIXES = ((".gz", "gzip"), (".gzip", "gzip"), (".tgz", "gzip"), (".zip", "zip"))
PEEK_BYTES = 4


def compression_of(filename: str | None, head: bytes = b"") -> str | None:
    """``"zip"``, ``"gzip"`` or None for a file starting with ``head`` named
    ``filename``. The content decides when it is known (a ``voters.txt``
    that is really gzip is compressed; a ``.zip`` that is plain text is
    not); the name only when no bytes were given."""
    if head:
        return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
    name = (filename or "").lower()
    return next((kind for suffix, kind in _SUFFIXES if name.endswith(suffix)), None)


def peek(stream: IO[bytes]) -> bytes:
    """The first bytes of a seekable stream, which is left at its start; b""
    (the name decides) for a stream that cannot go back."""
    try:
        if not stream.seekable():
            return b""
        stream.seek(0)
        head = stream.read(PEEK_BYTES)
        stream.seek(0)
    except (OSError, ValueError):
        return b""
    return head


def describe_upload(conn: sa.Connection, upload_id: str, params: dict[str, Any], head: bytes,
                    compressed: str | None = None) -> dict[str, Any]:
    """``input`` of a job over the stored upload ``upload_id`` (read in the
    creating transaction). ``compressed`` overrides the detection, for code
    that knows better (e.g. a file stored already decompressed)."""
    row = conn.execute(sa.select(uploads.c.filename, uploads.c.size, uploads.c.compression)
                       .where(uploads.c.id == upload_id)).one()
    layout = params.get("format")
    # uploads.compression: a .zip/.gz stored expanded (a retry reads the expanded blob).
    return {"filename": row.filename, "bytes": int(row.size),
            "compressed": compressed or row.compression or compression_of(row.filename, head),
            "layout": layout if isinstance(layout, str) else None}


def public_input(params: dict[str, Any], result: dict[str, Any]) -> dict[str, Any] | None:
    """The job object's ``input``: null for a job without a file (or one
    created before it was recorded); a layout the job reported later wins."""
    recorded = result.get(INPUT_KEY)
    if not isinstance(recorded, dict):
        return None
    layout = result.get("layout") or recorded.get("layout") or params.get("format")
    return {"filename": recorded.get("filename"), "bytes": recorded.get("bytes"),
            "compressed": recorded.get("compressed"), "layout": layout if isinstance(layout, str) else None}


def public_result(result: dict[str, Any]) -> dict[str, Any]:
    """The job object's ``result``: without the recorded input, which the
    object shows once, as ``input``."""
    if INPUT_KEY not in result:
        return result
    return {key: value for key, value in result.items() if key != INPUT_KEY}
