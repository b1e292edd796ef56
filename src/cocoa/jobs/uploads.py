"""Uploaded files kept in the database as fixed-size chunks.

Why the database and not a directory: any worker on any host can then read
any job's file, backups cover it, and a client-supplied file name is never a
path anywhere (it is stored only for display).
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass
from typing import IO

import sqlalchemy as sa

from cocoa.db.driver import driver_for
from cocoa.db.engine import reading
from cocoa.db.tables import upload_chunks, uploads
from cocoa.jobs.model import utcnow


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The file is larger than the upload limit of {limit:,} bytes.")
        self.limit = limit


class UploadPurged(Exception):
    """The blob was purged by retention; the file has to be uploaded again."""


@dataclass(frozen=True, slots=True)
class StoredUpload:
    id: str
    size: int
    sha256: str


def store_upload(
    conn: sa.Connection, stream: IO[bytes], *, filename: str | None, content_type: str | None,
    created_by: str | None, max_bytes: int, chunk_bytes: int, compression: str | None = None,
) -> StoredUpload:
    """Copy ``stream`` into chunks inside the caller's transaction
    (``compression``: what the client sent; ``stream`` is already the expanded file)."""
    upload_id = str(uuid.uuid4())
    conn.execute(uploads.insert().values(
        id=upload_id, filename=_display_name(filename), content_type=content_type, size=0,
        sha256="", chunk_count=0, created_by=created_by, created_at=utcnow(),
        compression=compression,
    ))
    digest = hashlib.sha256()
    size = seq = 0
    while chunk := stream.read(chunk_bytes):
        size += len(chunk)
        if size > max_bytes:
            raise UploadTooLarge(max_bytes)
        digest.update(chunk)
        conn.execute(upload_chunks.insert().values(upload_id=upload_id, seq=seq, data=chunk))
        seq += 1
    conn.execute(uploads.update().where(uploads.c.id == upload_id).values(
        size=size, sha256=digest.hexdigest(), chunk_count=seq,
    ))
    return StoredUpload(upload_id, size, digest.hexdigest())


def _display_name(filename: str | None) -> str | None:
    if not filename:
        return None
    # Keep only the last path component and a sane length: it is shown, never used.
    return filename.replace("\\", "/").rsplit("/", 1)[-1][:255] or None


class BlobReader(io.RawIOBase):
    """A seekable, read-only file over an upload's chunks, one chunk in memory."""

    def __init__(self, engine: sa.Engine, upload_id: str) -> None:
        super().__init__()
        self._engine = engine
        self._upload_id = upload_id
        with reading(engine) as conn:
            row = conn.execute(
                sa.select(uploads.c.size, uploads.c.purged_at).where(uploads.c.id == upload_id)
            ).one_or_none()
            first = conn.execute(
                sa.select(sa.func.length(upload_chunks.c.data))
                .where(upload_chunks.c.upload_id == upload_id, upload_chunks.c.seq == 0)
            ).scalar()
        if row is None:
            raise FileNotFoundError(f"upload {upload_id} does not exist")
        if row.purged_at is not None:
            raise UploadPurged(f"upload {upload_id} was purged by retention")
        self._size: int = row.size
        self._chunk_size: int = first or 1
        self._pos = 0
        self._cached_seq = -1
        self._cached = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._size:
            return 0
        seq, start = divmod(self._pos, self._chunk_size)
        chunk = self._chunk(seq)
        piece = chunk[start:start + len(buffer)]
        buffer[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)

    def _chunk(self, seq: int) -> bytes:
        if seq != self._cached_seq:
            with reading(self._engine) as conn:
                self._cached = _read_chunk(conn, self._upload_id, seq)
            self._cached_seq = seq
        return self._cached


_CHUNK_QUERY = "SELECT data FROM upload_chunks WHERE upload_id = {mark} AND seq = {mark}"


def _read_chunk(conn: sa.Connection, upload_id: str, seq: int) -> bytes:
    """One chunk's bytes, in the backend's binary format where it has one
    (PostgreSQL's default text format is hex: twice the bytes)."""
    driver = driver_for(conn)
    data = driver.fetch_binary(conn, _CHUNK_QUERY.format(mark=driver.placeholder), (upload_id, seq))
    if data is None:
        raise FileNotFoundError(f"upload {upload_id} has no chunk {seq}")
    return bytes(data)


def open_upload(engine: sa.Engine, upload_id: str) -> IO[bytes]:
    return io.BufferedReader(BlobReader(engine, upload_id), buffer_size=256 * 1024)
