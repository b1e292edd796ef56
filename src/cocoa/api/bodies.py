"""Reading a form body within a size limit, for the API and the web forms alike.

Why not plain ``request.form()``: Starlette's defaults accept any number of
files of any size and spool them to temporary files, so whoever reaches the
port can fill the disk. Every form body in this application is read here
instead, and only after the caller is known to be allowed (the callers check
session or token, role and - where it can be decided without the body - CSRF
first):

* the content type is checked before a byte is read (415);
* a ``Content-Length`` over the limit is refused before a byte is read (413);
* a body without one (chunked) or with a lying one is counted as it arrives
  and cut off at the limit (413) - the parser never sees more;
* files (none at all for the small forms) and fields are counted by the
  parser, and a malformed body is a 400 that says what is wrong.

Every refusal is an :class:`~cocoa.api.errors.ApiError`, which the API turns
into its JSON error shape and the web pages into a page or JSON.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Scope, Send

from cocoa.api.errors import ApiError
from cocoa.jobs.uploads import UploadSink, UploadTooLarge

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"

# Room for multipart boundaries and the small text fields next to a file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
SMALL_FORM_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class FormLimits:
    """What one kind of form may be: its size, its parts and its encodings."""

    limit: int  # the limit a client is told about, in bytes
    slack: int = 0  # allowed on top of ``limit`` for framing (a file upload's text fields)
    max_files: int = 0
    max_fields: int = 16
    media_types: tuple[str, ...] = (URLENCODED, MULTIPART)
    noun: str = "form"  # what the messages call the body: "form", "upload"
    too_large_code: str = "form_too_large"

    @property
    def max_body(self) -> int:
        return self.limit + self.slack

    def too_large(self) -> ApiError:
        return ApiError(413, f"The {self.noun} is larger than the limit of {self.limit:,} bytes.",
                        self.too_large_code, {"limit_bytes": self.limit})


# Login, logout, job controls, the geocoding form: a few short text fields.
SMALL_FORM = FormLimits(SMALL_FORM_BYTES)


def upload_limits(limit: int, max_files: int = 4, max_fields: int = 16) -> FormLimits:
    """A multipart upload of one file of at most ``limit`` bytes plus a few text fields.

    More file parts than the one expected are parsed (the size limit still
    bounds them) so that the endpoint can say exactly what is wrong with them.
    """
    return FormLimits(limit, slack=MULTIPART_OVERHEAD_BYTES, max_files=max_files, max_fields=max_fields,
                      media_types=(MULTIPART,), noun="upload", too_large_code="file_too_large")


def check_headers(request: Request, limits: FormLimits) -> None:
    """415 and the early 413, before a byte of the body is read."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in limits.media_types:
        got = content_type[:100] or "no content type"
        expected = " or ".join(limits.media_types)
        raise ApiError(415, f"Send the {limits.noun} as {expected} (got {got!r}).",
                       "unsupported_media_type", {"expected": expected})
    length = request.headers.get("content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > limits.max_body:
        raise limits.too_large()


Receive = Callable[[], Awaitable[Message]]


def counting_receive(receive: Receive, limit: int, too_large: Callable[[], Exception]) -> Receive:
    """Stop a body without (or with a lying) Content-Length at ``limit`` bytes."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise too_large()
        return message

    return wrapped


async def read_form(request: Request, limits: FormLimits, file_sink: UploadSink | None = None) -> FormData:
    """The parsed form, within ``limits``; the caller must ``close()`` it.

    With ``file_sink``, the bytes of the part named ``file`` also go to the
    sink as they arrive (it stores the upload while it streams in); the
    caller finishes or discards the sink.

    Starlette's own 400s (too many files or fields, a malformed body) become
    an ``ApiError`` with a message that says what to send instead.
    """
    check_headers(request, limits)
    limited = Request(request.scope, counting_receive(request.receive, limits.max_body, limits.too_large))
    try:
        if file_sink is None:
            return await limited.form(max_files=limits.max_files, max_fields=limits.max_fields)
        async with aclosing(limited.stream()) as stream:
            parser = _SinkingParser(limited.headers, stream, file_sink, max_files=limits.max_files,
                                    max_fields=limits.max_fields)
            return await parser.parse()
    except UploadTooLarge:
        raise limits.too_large() from None
    except (HTTPException, MultiPartException) as exc:
        detail = str(exc.detail) if isinstance(exc, HTTPException) else exc.message
        raise ApiError(400, _parse_message(detail, limits), "malformed_form",
                       {"max_files": limits.max_files, "max_fields": limits.max_fields}) from None


class _SinkingParser(MultiPartParser):
    """Starlette's multipart parser, with the first file part named ``file``
    also written to an :class:`UploadSink`."""

    def __init__(self, headers: Headers, stream: AsyncGenerator[bytes, None], sink: UploadSink,
                 **limits: Any) -> None:
        super().__init__(headers, stream, **limits)
        self._sink: UploadSink | None = sink

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        part = self._current_part
        if self._sink is not None and part.file is not None and part.field_name == "file":
            part.file = _SinkingFile(part.file, self._sink)
            self._sink = None


class _SinkingFile(UploadFile):
    """A spooled file part whose bytes are also written to a sink: buffered
    on the event loop, stored a whole chunk at a time in a thread."""

    def __init__(self, spooled: UploadFile, sink: UploadSink) -> None:
        super().__init__(spooled.file, size=spooled.size, filename=spooled.filename, headers=spooled.headers)
        self._sink = sink

    async def write(self, data: bytes) -> None:
        await super().write(data)
        self._sink.write(data)
        if self._sink.ready:
            await run_in_threadpool(self._sink.flush)


def _parse_message(detail: str, limits: FormLimits) -> str:
    if limits.max_files == 0 and detail.startswith("Too many files"):
        return f"This {limits.noun} takes no files; send its fields as text only."
    return f"The {limits.noun} could not be read: {detail}"


JSON_BODY_BYTES = 1024 * 1024


class BodyTooLarge(HTTPException):
    """An :class:`ApiError` raised while FastAPI reads a body.

    FastAPI turns any exception from its body read into a bare "error parsing
    the body" 400 - except an ``HTTPException``, which it lets through; the
    error handler then answers with this one's code and details.
    """

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.status, error.message)
        self.code = error.code
        self.details = error.details


class SmallBodyLimit:
    """Pure ASGI middleware: every body that is not a form is small.

    FastAPI reads a JSON body whole, into memory, before the route's
    dependencies decide who is asking - and ``POST /auth/tokens`` is public.
    Our JSON requests (a login, geocoding filters) are a few hundred bytes,
    so anything but a form (read later by :func:`read_form` under its own
    limit) is cut off at ``limit``: a declared length at once, a chunked or
    lying one as it arrives.
    """

    def __init__(self, app: ASGIApp, limit: int = JSON_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_form(scope):
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            response = JSONResponse(self._error(), status_code=413, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    @staticmethod
    def _is_form(scope: Scope) -> bool:
        content_type = Headers(scope=scope).get("content-type", "").lower()
        return content_type.startswith((MULTIPART, URLENCODED))

    def _too_large(self) -> ApiError:
        return ApiError(413, f"The request body is larger than the limit of {self.limit:,} bytes for a "
                        "non-form request; send files as multipart/form-data.", "body_too_large",
                        {"limit_bytes": self.limit})

    def _error(self) -> dict[str, object]:
        error = self._too_large()
        return {"error": {"code": error.code, "message": error.message, "details": error.details}}

    def _counting(self, receive: Receive) -> Receive:
        return counting_receive(receive, self.limit, lambda: BodyTooLarge(self._too_large()))
