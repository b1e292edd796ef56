"""The upload copied where GDAL can open it, under a server-generated name.

A path inside a zip is only ever *read* through ``/vsizip/`` after the zip
directory passed :func:`~cocoa.domain.zip_safety.check_zip_safety`, and GDAL messages
are scrubbed of these server paths before a client sees them.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import weakref
import zipfile
from typing import IO

from cocoa.domain.parcel_files.sniffing import Located


class StagedFile:
    """The upload copied to a temporary file with a server-generated name.

    GDAL needs a path (a zipped File Geodatabase cannot be opened from a
    buffer). The file is removed by :meth:`close`, or - when it lives in a
    per-run cache that nobody closes - when the object is garbage collected
    or the process exits.
    """

    def __init__(self, data: bytes | IO[bytes], suffix: str) -> None:
        fd, path = tempfile.mkstemp(prefix="cocoa-parcels-", suffix=suffix)
        self.path = path
        self._finalizer = weakref.finalize(self, _remove_quietly, path)
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, bytes | bytearray | memoryview):
                out.write(data)
            else:
                rewind = data.seekable()
                if rewind:
                    data.seek(0)
                shutil.copyfileobj(data, out, 1024 * 1024)
                if rewind:
                    data.seek(0)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def stage_upload(data: bytes | IO[bytes], located: Located) -> StagedFile:
    """Copy the upload where GDAL can open it.

    A zip is re-packed *uncompressed* with only the dataset's own members:
    GDAL can then seek inside it, whereas a deflated ``.shp`` would be
    re-inflated from the top by every batch (quadratic on big files). The
    archive already passed :func:`check_zip_safety`, and ``zipfile`` stops at
    each member's declared size, so the copy is bounded.
    """
    if located.container != "zip":
        return StagedFile(data, located.staged_suffix)
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    if located.format == "csv":  # read by Python's csv module: stage the member itself
        with zipfile.ZipFile(stream) as src, src.open(located.inner_path or "") as member:
            staged = StagedFile(member, ".csv")
        stream.seek(0)
        return staged
    staged = StagedFile(b"", ".zip")
    try:
        with zipfile.ZipFile(stream) as src, \
                zipfile.ZipFile(staged.path, "w", zipfile.ZIP_STORED, allowZip64=True) as dst:
            for info in src.infolist():
                if info.is_dir() or not _belongs(info.filename, located):
                    continue
                with src.open(info) as reader, dst.open(
                    zipfile.ZipInfo(info.filename), "w", force_zip64=info.file_size > 2**31,
                ) as writer:
                    shutil.copyfileobj(reader, writer, 1024 * 1024)
    except BaseException:
        staged.close()
        raise
    finally:
        stream.seek(0)
    return staged


def _belongs(name: str, located: Located) -> bool:
    inner = located.inner_path or ""
    if located.format == "filegdb":
        return name.startswith(inner + "/")
    if located.format == "shapefile":
        return os.path.splitext(name)[0].lower() == os.path.splitext(inner)[0].lower()
    return name == inner


def gdal_path(staged: StagedFile, located: Located) -> str:
    """The GDAL path of the dataset: the staged file or a path inside it."""
    if located.container == "zip":
        return f"/vsizip/{{{staged.path}}}/{located.inner_path}"
    return staged.path


_STAGED_PATH = re.compile(
    r"(?:/vsizip/)?\{?[^\s'\"{}]*cocoa-parcels-[^\s'\"{}/]*\}?(?:/[^\s'\":]*)?")
_DRIVER_HINT = re.compile(r";?\s*It might help to specify the correct driver.*", re.DOTALL)


def scrub_paths(message: str) -> str:
    """A GDAL message fit for the client: server paths of staged uploads
    become "the uploaded file" and the advice to prefix a driver is dropped."""
    return _DRIVER_HINT.sub("", _STAGED_PATH.sub("the uploaded file", message)).strip()
