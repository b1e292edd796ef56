"""Reading the body of a web form: only after the caller is allowed, never more than the cap.

Why this order: a body costs the server memory or disk as it is read, so it
must be the last thing looked at. Every state-changing web route first checks
what it can without the body - the session, the role (from the database),
and the CSRF token when it came as the ``X-CSRF-Token`` header (the upload
script) - and only then reads the form through :mod:`cocoa.api.bodies`, the
same counting, size-limited reader the API uses. A plain HTML form (no
script) carries its CSRF token as a field, so for it the body is read - but
only at this point, and only up to the cap.

When the CSRF check is bound to fail whatever the body says (the session
holds no token, or the header carries a wrong one), the body is not read at
all: the route gets an empty form, and its own CSRF check refuses it with the
route's usual 403 page.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request

from cocoa.api.bodies import SMALL_FORM, FormLimits, read_form, upload_limits
from cocoa.jobs.uploads import UploadSink
from cocoa.web import security


def csrf_fails_unread(request: Request) -> bool:
    """True when the CSRF check must fail whatever the body holds."""
    expected = request.session.get(security.CSRF_SESSION_KEY)
    if not isinstance(expected, str) or not expected:
        return True  # no token was ever handed out, so none can match
    return bool(request.headers.get(security.CSRF_HEADER)) and not security.csrf_ok(request)


async def read_checked_form(request: Request, limits: FormLimits = SMALL_FORM,
                            file_sink: UploadSink | None = None) -> FormData:
    """The form of a POST whose session and role were checked already.

    Raises :class:`~cocoa.api.errors.ApiError` (413, 415, 400) for a body
    over the cap, of another content type or malformed; the caller closes
    the returned form (it may hold an uploaded file).
    """
    if csrf_fails_unread(request):
        return FormData()
    return await read_form(request, limits, file_sink)


def start_limits(needs_file: bool, max_upload_bytes: int) -> FormLimits:
    """A start form with a file is an upload like the API's (multipart only,
    ``COCOA_MAX_UPLOAD_BYTES``); the geocoding form is a small form."""
    return upload_limits(max_upload_bytes, max_files=1) if needs_file else SMALL_FORM
