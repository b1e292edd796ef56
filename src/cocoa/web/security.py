"""Session login, CSRF tokens and safe redirects for the web pages.

The session is Starlette's signed cookie (``cocoa_session``, HttpOnly,
SameSite=lax). SameSite alone is not a CSRF defence we want to rely on (old
browsers, same-site subdomains), so every POST also carries a per-session
random token: in the form field ``csrf_token`` or the ``X-CSRF-Token`` header
(used by the XMLHttpRequest uploads). The login form gets its token from the
same session before anyone has logged in, so login CSRF is refused as well.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request

from cocoa.api.deps import session_user
from cocoa.auth import User

CSRF_SESSION_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    """The session's token, created on first use (e.g. on the login page)."""
    token = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return token


def csrf_ok(request: Request, form: Any | None = None) -> bool:
    """Constant-time check of the submitted token against the session's.

    A session without a token never matches: the token must have been handed
    out by one of our pages first.
    """
    expected = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(expected, str) or not expected:
        return False
    submitted = request.headers.get(CSRF_HEADER)
    if not submitted and form is not None:
        value = form.get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    if not submitted:
        return False
    return secrets.compare_digest(submitted.encode(), expected.encode())


def login(request: Request, user: User) -> None:
    """Start a fresh session: nothing from before the login survives, and the
    CSRF token is rotated so a token seen by anyone pre-login is worthless."""
    request.session.clear()
    request.session["user"] = {"id": user.id, "username": user.username, "role": user.role.value}
    request.session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)


def logout(request: Request) -> None:
    request.session.clear()


def current_user(request: Request) -> User | None:
    return session_user(request)


def safe_next(target: str | None, default: str = "/jobs") -> str:
    """Only same-site absolute paths: no open redirect via ``?next=``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target


def pop_flash(request: Request) -> list[dict[str, str]]:
    """Messages queued by a POST for the page it redirects to (read once)."""
    messages = request.session.pop("flash", None)
    return messages if isinstance(messages, list) else []


def flash(request: Request, message: str, kind: str = "info") -> None:
    messages = request.session.get("flash")
    messages = messages if isinstance(messages, list) else []
    messages.append({"kind": kind, "message": message})
    request.session["flash"] = messages[-5:]
