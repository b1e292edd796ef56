"""Uploaded files kept in the database as fixed-size chunks.

Why the database and not a directory: any worker on any host can then read
any job's file, backups cover it, and a client-supplied file name is never a
path anywhere (it is stored only for display).
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable
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
    upload_id = _insert_upload(conn, filename, content_type, created_by, compression)
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


class UploadSink:
    """An upload stored while it arrives, chunk by chunk, each in its own
    short transaction.

    Why: copying a file of a million rows into the database after its last
    byte kept the client waiting for seconds before its ``202``; stored as
    it streams in, the file is counted, hashed and in the database when the
    request ends, and creating the job only has to refer to it. Until then
    the ``uploads`` row has no checksum and no job: a request that fails
    calls :meth:`discard`, and a server that dies mid-upload leaves a row
    that :func:`cocoa.jobs.maintenance` removes once it is older than a day.

    ``keep`` decides from the file's first bytes whether it is stored here
    at all (a compressed voter file is stored expanded after the last byte
    instead). :meth:`write` only buffers, so it can run on the event loop;
    :meth:`flush` writes the full chunks and belongs in a thread.
    """

    def __init__(
        self, writer: sa.Engine, *, chunk_bytes: int, max_bytes: int, created_by: str | None,
        keep: Callable[[bytes], bool] | None = None, head_bytes: int = 8,
    ) -> None:
        self._writer = writer
        self._chunk_bytes = chunk_bytes
        self._max_bytes = max_bytes
        self._created_by = created_by
        self._keep = keep
        self._head_bytes = head_bytes
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._size = self._seq = 0
        self.kept: bool | None = None  # None until the first bytes decide
        self.upload_id: str | None = None

    def write(self, data: bytes) -> None:
        if self.kept is False:
            return
        self._buffer += data
        self._size += len(data)
        if self._size > self._max_bytes:
            raise UploadTooLarge(self._max_bytes)
        if self.kept is None and len(self._buffer) >= self._head_bytes:
            self.kept = self._keep is None or self._keep(bytes(self._buffer[:self._head_bytes]))
            if not self.kept:
                self._buffer.clear()

    @property
    def ready(self) -> bool:
        """Whether :meth:`flush` has a full chunk to write."""
        return bool(self.kept) and len(self._buffer) >= self._chunk_bytes

    def flush(self, *, final: bool = False) -> None:
        """Store the full chunks (``final``: the rest too)."""
        while self._buffer and (final or len(self._buffer) >= self._chunk_bytes):
            chunk = bytes(self._buffer[:self._chunk_bytes])
            del self._buffer[:self._chunk_bytes]
            self._digest.update(chunk)
            with self._writer.begin() as conn:
                if self.upload_id is None:
                    self.upload_id = _insert_upload(conn, None, None, self._created_by, None)
                conn.execute(upload_chunks.insert().values(upload_id=self.upload_id, seq=self._seq, data=chunk))
            self._seq += 1

    def finish(self, filename: str | None, content_type: str | None) -> StoredUpload | None:
        """The stored upload, now complete; None if it was not kept (or empty)."""
        if self.kept is None:  # shorter than the head: decide on what there is
            self.kept = self._keep is None or self._keep(bytes(self._buffer))
        if not self.kept:
            return None
        self.flush(final=True)
        if self.upload_id is None:
            return None
        sha256 = self._digest.hexdigest()
        with self._writer.begin() as conn:
            conn.execute(uploads.update().where(uploads.c.id == self.upload_id).values(
                filename=_display_name(filename), content_type=content_type, size=self._size,
                sha256=sha256, chunk_count=self._seq))
        return StoredUpload(self.upload_id, self._size, sha256)

    def discard(self) -> None:
        """Remove what was stored: the request that carried it failed."""
        self._buffer.clear()
        if self.upload_id is not None:
            with self._writer.begin() as conn:
                delete_uploads(conn, [self.upload_id])
            self.upload_id = None


def _insert_upload(conn: sa.Connection, filename: str | None, content_type: str | None,
                   created_by: str | None, compression: str | None) -> str:
    upload_id = str(uuid.uuid4())
    conn.execute(uploads.insert().values(
        id=upload_id, filename=_display_name(filename), content_type=content_type, size=0,
        sha256="", chunk_count=0, created_by=created_by, created_at=utcnow(),
        compression=compression,
    ))
    return upload_id


def delete_uploads(conn: sa.Connection, upload_ids: list[str]) -> None:
    """Remove uploads and their chunks (not purge: nothing refers to them)."""
    conn.execute(upload_chunks.delete().where(upload_chunks.c.upload_id.in_(upload_ids)))
    conn.execute(uploads.delete().where(uploads.c.id.in_(upload_ids)))


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
