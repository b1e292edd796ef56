"""Creating an upload job: a plain file stored as it streams in, a
compressed upload (.zip / .gz voter files) from the data file inside it.

A plain file goes to the database while it arrives (an
:class:`~cocoa.jobs.uploads.UploadSink` fed by the form reader), so the
``202`` does not wait for a copy of the whole file; :func:`storing` removes
it again if the request fails before its job exists.

The spooled upload is opened as an archive where it lies and the job is
created from the data file inside it, expanding as validation reads it and
again as it is copied into the stored blob (:mod:`cocoa.domain.compressed`).
A problem found while expanding - a bomb past its ratio, a size past
``COCOA_MAX_DECOMPRESSED_BYTES``, a corrupt stream - is the client's, so it
becomes a 4xx like any validation error, whichever read meets it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from cocoa.domain.compressed import compression_of, unpack
from cocoa.domain.errors import InputError
from cocoa.jobs.client import JobClient, UploadSource
from cocoa.jobs.model import Job
from cocoa.jobs.uploads import UploadSink
from cocoa.jobtypes.input_errors import as_validation_error


def create_plain(jobs: JobClient, type_name: str, request: dict[str, Any], source: UploadSource,
                 **options: Any) -> Job:
    return jobs.create(type_name, request, upload=source, **options)


def create_unpacked(jobs: JobClient, type_name: str, request: dict[str, Any], source: UploadSource,
                    **options: Any) -> Job:
    """The job over the data file of ``source`` (itself, if not compressed)."""
    member = request.get("member")
    try:
        unpacked = unpack(source.stream, member=member if isinstance(member, str) else None,
                          max_bytes=jobs.settings.max_decompressed_bytes)
        if unpacked.compression is None:
            return jobs.create(type_name, request, upload=source, **options)
        inner = replace(source, stream=unpacked.stream, compression=unpacked.compression, stored=None)
        try:
            return jobs.create(type_name, request, upload=inner, **options)
        finally:
            unpacked.stream.close()
    except InputError as exc:
        raise as_validation_error(exc) from exc


def upload_sink(jobs: JobClient, created_by: str | None, *, unpack: bool) -> UploadSink:
    """The sink of an upload endpoint; where a compressed voter file is
    unpacked (``unpack``), only a plain file is stored as it arrives - the
    data file inside an archive is stored, expanded, after the last byte."""
    return jobs.upload_sink(created_by, keep=_is_plain if unpack else None)


def _is_plain(head: bytes) -> bool:
    return compression_of(head) is None


@asynccontextmanager
async def storing(sink: UploadSink | None) -> AsyncIterator[None]:
    """Discard what ``sink`` stored if the block fails (its job was not
    created): a refused, cut-off or malformed upload leaves nothing behind."""
    try:
        yield
    except BaseException:
        if sink is not None:
            with anyio.CancelScope(shield=True):  # even when the client went away
                await run_in_threadpool(sink.discard)
        raise


async def finish_upload(sink: UploadSink, source: UploadSource) -> UploadSource:
    """``source`` with what the sink stored, now complete."""
    stored = await run_in_threadpool(sink.finish, source.filename, source.content_type)
    return replace(source, stored=stored)
