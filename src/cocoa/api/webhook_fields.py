"""The ``webhook_url`` field every job-creating request takes (issue 19).

Checked here, at the API, so a bad URL is a 422 that says what to fix before
any job exists (see :func:`cocoa.jobs.webhooks.check_url` for what is refused
and why); the job then records it in its creation transaction.
"""

from __future__ import annotations

from typing import Any

from cocoa.api.errors import ApiError
from cocoa.config import Settings
from cocoa.jobs.webhooks import MAX_URL, WebhookUrlError, check_url

DESCRIPTION = ("An http(s) URL told by a signed JSON POST when this job completes, fails or is cancelled "
               "(instead of the server's COCOA_WEBHOOK_URL); hosts on internal networks are refused.")
OPENAPI_PROPERTY: dict[str, Any] = {"type": "string", "maxLength": MAX_URL, "description": DESCRIPTION}


def checked_webhook_url(value: str | None, settings: Settings) -> str | None:
    """``value`` as a URL webhooks may call, None if empty; else a 422 naming the problem.
    Resolves the host (DNS): call it from the threadpool."""
    if value is None or not value.strip():
        return None
    try:
        return check_url(value, allow_private=settings.webhook_allow_private)
    except WebhookUrlError as exc:
        raise ApiError(422, str(exc), "invalid_webhook_url",
                       [{"location": ["body", "webhook_url"], "message": str(exc), "type": "url"}]) from None
