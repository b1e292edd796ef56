"""Creating an upload job from a compressed upload (.zip / .gz voter files).

The spooled upload is opened as an archive where it lies and the job is
created from the data file inside it, expanding as validation reads it and
again as it is copied into the stored blob (:mod:`cocoa.domain.compressed`).
A problem found while expanding - a bomb past its ratio, a size past
``COCOA_MAX_DECOMPRESSED_BYTES``, a corrupt stream - is the client's, so it
becomes a 4xx like any validation error, whichever read meets it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cocoa.domain.compressed import unpack
from cocoa.domain.errors import InputError
from cocoa.jobs.client import JobClient, UploadSource
from cocoa.jobs.model import Job
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
        inner = replace(source, stream=unpacked.stream, compression=unpacked.compression)
        try:
            return jobs.create(type_name, request, upload=inner, **options)
        finally:
            unpacked.stream.close()
    except InputError as exc:
        raise as_validation_error(exc) from exc
