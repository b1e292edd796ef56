"""Session login, CSRF tokens and safe redirects for the web pages.

The session is Starlette's signed cookie (``cocoa_session``, HttpOnly,
SameSite=lax; ``__Host-cocoa_session`` and Secure with
``COCOA_COOKIE_SECURE``) holding a server-side session id: logging out
deletes the session on the server, so a copy of the cookie is worthless
afterwards (see :mod:`cocoa.api.sessions`). Logins go through the same
throttle and password-check bound as the token API
(:mod:`cocoa.login_guard`).

SameSite alone is not a CSRF defence we want to rely on (old browsers,
same-site subdomains), so every POST also carries a per-session
random token: in the form field ``csrf_token`` or the ``X-CSRF-Token`` header
(used by the XMLHttpRequest uploads). The login form gets its token from the
same session before anyone has logged in, so login CSRF is refused as well.
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request

from cocoa import auth
from cocoa.api.deps import client_address, login_guard, session_user
from cocoa.api.sessions import SESSION_ID_KEY, session_entry
from cocoa.auth import TokenCache, User
from cocoa.login_guard import LoginRefused

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


def log_in(request: Request, username: str, password: str) -> User | LoginRefused:
    """Check the password (throttled, bounded) and start a session: the user,
    or why not. Blocking (Argon2, database): call it from a thread."""
    try:
        user = login_guard(request).attempt(username, password, client_address(request))
    except LoginRefused as refused:
        return refused
    login(request, user)
    return user


def login(request: Request, user: User) -> None:
    """Start a fresh session: nothing from before the login survives (a
    session id planted before it ends here), and the CSRF token is rotated so
    a token seen by anyone pre-login is worthless. Blocking (a database write)."""
    _end_server_session(request)
    request.session.clear()
    request.session[SESSION_ID_KEY] = auth.create_session(_engine(request), user.id)
    request.session["user"] = session_entry(user)
    request.session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)


def logout(request: Request) -> None:
    """End the session on the server, then forget the cookie's contents.
    Blocking (a database write): call it from a thread."""
    _end_server_session(request)
    request.session.clear()


def _end_server_session(request: Request) -> None:
    session_id = request.session.get(SESSION_ID_KEY)
    if isinstance(session_id, str) and session_id:
        auth.end_session(_engine(request), session_id)
        session_cache: TokenCache = request.app.state.session_cache
        session_cache.discard(session_id)  # at once in this process; elsewhere within the cache time


def _engine(request: Request) -> sa.Engine:
    engine: sa.Engine = request.app.state.manager.engine
    return engine


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
