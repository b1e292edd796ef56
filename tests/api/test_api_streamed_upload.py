"""An upload is stored while it streams in (issue 18: the ``202`` within a
second of the last byte), and a refused or abandoned one leaves nothing.

Over real HTTP to ``cocoa serve`` on each backend: the body is sent by a
generator that, halfway through the file, waits until the server has put
chunks of it into the database - a server that stored the file only after
its last byte would never get there, and the test fails at the deadline.
"""

from __future__ import annotations

import hashlib
import io
import socket
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from api_helpers import assert_error, root, wait_status
from tests.polling import wait_for

from cocoa.db.engine import make_engine
from cocoa.db.tables import jobs, upload_chunks, uploads
from cocoa.jobs.uploads import open_upload
from cocoa.samples.voters import generate

VOTERS = "/api/v1/voters/import"
CHUNK = 64 * 1024
LIMIT = 4 * 1024 * 1024


@pytest.fixture
def streaming_server(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """A server with 64 KiB chunks and a 4 MiB limit, and a worker."""
    yield from root.serving(db_url, tmp_path, COCOA_UPLOAD_CHUNK_BYTES=str(CHUNK),
                            COCOA_MAX_UPLOAD_BYTES=str(LIMIT))


@pytest.fixture
def engine(streaming_server: Any) -> Iterator[sa.Engine]:
    engine = make_engine(streaming_server.db_url)
    yield engine
    engine.dispose()


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


class Multipart:
    """A multipart body with text fields and one file, sent in pieces."""

    def __init__(self, data: bytes, filename: str = "ncvoter.txt", **fields: str) -> None:
        self.boundary = uuid.uuid4().hex
        head = "".join(f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                       for name, value in fields.items())
        head += (f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 "Content-Type: text/plain\r\n\r\n")
        self.head, self.data = head.encode(), data
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def pieces(self, pause_at: int | None = None, pause: Any = None) -> Iterator[bytes]:
        """The body in 16 KiB pieces, calling ``pause()`` once ``pause_at`` file bytes are out."""
        yield self.head
        for start in range(0, len(self.data), 16 * 1024):
            if pause_at is not None and start >= pause_at:
                pause()
                pause_at = None
            yield self.data[start:start + 16 * 1024]
        yield self.tail


def voter_file(rows: int) -> bytes:
    return generate("nc_statewide", rows, seed=7).data


def test_the_file_is_in_the_database_before_its_last_byte_is_sent(streaming_server: Any, engine: sa.Engine) -> None:
    data = voter_file(2500)
    assert len(data) > 8 * CHUNK, len(data)  # several chunks before the pause
    body = Multipart(data, mode="full")
    stored_early: list[int] = []

    def wait_for_chunks() -> None:
        stored_early.append(wait_for(lambda: count(engine, upload_chunks) or None, 30,
                                     "chunks of the upload in the database while it is still being sent"))

    with streaming_server.client() as admin:
        response = admin.post(VOTERS, content=body.pieces(pause_at=len(data) // 2, pause=wait_for_chunks),
                              headers={"Content-Type": body.content_type})
        assert response.status_code == 202, response.text
        job = wait_status(admin, response.json()["job_id"], "completed", timeout=120)
    assert stored_early and stored_early[0] >= 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(uploads).join(jobs, jobs.c.upload_id == uploads.c.id)
                           .where(jobs.c.id == job["id"])).one()
    assert (row.size, row.sha256, row.chunk_count) == (len(data), hashlib.sha256(data).hexdigest(),
                                                       -(-len(data) // CHUNK))
    assert (row.filename, row.compression) == ("ncvoter.txt", None)
    assert open_upload(engine, row.id).read() == data
    assert job["result"]["voters_created"] + job["error_count"] >= 1
    assert job["progress"]["processed"] == job["params"]["rows"]


REFUSALS = {  # (fields, file, status, code): each refused after whole chunks were stored
    "no data rows": ({"mode": "full"}, b"ncid\tlast_name\tfirst_name\n" + b"\n" * (3 * CHUNK), 422, None),
    "bad mode": ({"mode": "sideways"}, b"x" * (3 * CHUNK), 422, None),
    "unknown field": ({"fromat": "auto"}, b"x" * (3 * CHUNK), 422, "unknown_field"),
    "not text": ({"mode": "full"}, b"\x00\xff" * (2 * CHUNK), 422, None),
}


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_refused_upload_leaves_no_file_behind(streaming_server: Any, engine: sa.Engine, refusal: str) -> None:
    fields, data, status, code = REFUSALS[refusal]
    body = Multipart(data, **fields)
    with streaming_server.client() as admin:
        response = admin.post(VOTERS, content=body.pieces(), headers={"Content-Type": body.content_type})
    assert_error(response, status, code)
    assert (root.stray_uploads(streaming_server.db_url), count(engine, upload_chunks)) == (0, 0)


def test_an_upload_over_the_limit_is_cut_off_and_removed(streaming_server: Any, engine: sa.Engine) -> None:
    """Sent chunked, so only counting stops it - after chunks were stored."""
    body = Multipart(b"a,b\n" * (LIMIT // 2))
    seen: list[int] = []

    def note_chunks() -> None:
        seen.append(wait_for(lambda: count(engine, upload_chunks) or None, 30, "chunks stored"))

    with streaming_server.client() as admin:
        response = admin.post(VOTERS, content=body.pieces(pause_at=LIMIT // 2, pause=note_chunks),
                              headers={"Content-Type": body.content_type})
    assert_error(response, 413, "file_too_large")
    assert seen and seen[0] >= 1  # something was stored, and then removed
    assert (root.stray_uploads(streaming_server.db_url), count(engine, upload_chunks)) == (0, 0)


def test_a_client_that_goes_away_mid_upload_leaves_no_file_behind(streaming_server: Any,
                                                                  engine: sa.Engine) -> None:
    data = voter_file(2500)
    body = Multipart(data, mode="full")
    parts = urlsplit(streaming_server.url)
    head = (f"POST {VOTERS} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {streaming_server.admin_token}\r\nContent-Type: {body.content_type}\r\n"
            f"Content-Length: {len(body.head) + len(data) + len(body.tail)}\r\n\r\n").encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + body.head + data[:len(data) // 2])
        wait_for(lambda: count(engine, upload_chunks) or None, 30, "chunks stored while the client sends")
    wait_for(lambda: (root.stray_uploads(streaming_server.db_url), count(engine, upload_chunks)) == (0, 0) or None, 30,
             "the half-sent upload removed after the client went away")


def test_a_zipped_voter_file_is_stored_expanded_not_as_it_arrived(streaming_server: Any,
                                                                  engine: sa.Engine) -> None:
    data = voter_file(400)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ncvoter10.txt", data)
    body = Multipart(packed.getvalue(), filename="ncvoter10.zip", mode="full")
    with streaming_server.client() as admin:
        response = admin.post(VOTERS, content=body.pieces(), headers={"Content-Type": body.content_type})
        assert response.status_code == 202, response.text
        job = wait_status(admin, response.json()["job_id"], "completed", timeout=60)
    assert (job["input"]["compressed"], job["input"]["filename"]) == ("zip", "ncvoter10.zip")
    with engine.connect() as conn:
        row = conn.execute(sa.select(uploads).join(jobs, jobs.c.upload_id == uploads.c.id)
                           .where(jobs.c.id == job["id"])).one()
    assert (row.size, row.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert root.stray_uploads(streaming_server.db_url) == 0  # the zip itself was never kept
