"""Web sessions that the server can end.

The cookie is Starlette's signed session (``SessionMiddleware``): the
signature proves the server wrote it, but not that the login it records is
still valid, so on its own a copied cookie kept working after logout, and
after a restart, until it expired 12 hours later. The cookie now carries a
random session id (``sid``) whose hash is a row in ``sessions``;
:class:`SessionCheck`, just inside ``SessionMiddleware``, looks it up and
empties a session whose row is gone (logout, password change, expiry) before
any route sees it. The lookup is cached per process like API tokens
(``COCOA_TOKEN_CACHE_SECONDS``): a logout in this process takes effect at
once, one made elsewhere (another process, a password change from the CLI)
within that time.

``COCOA_COOKIE_SECURE`` marks the cookie ``Secure`` and names it
``__Host-cocoa_session``, a prefix browsers only accept on a Secure cookie
for the exact host and path ``/``, so neither plain HTTP nor a sibling
subdomain can plant or read it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from cocoa import auth
from cocoa.config import Settings

SESSION_ID_KEY = "sid"
COOKIE_NAME = "cocoa_session"


def cookie_name(settings: Settings) -> str:
    return f"__Host-{COOKIE_NAME}" if settings.cookie_secure else COOKIE_NAME


def session_entry(user: auth.User) -> dict[str, Any]:
    """What the cookie says about its user (routes read it via ``session_user``)."""
    return {"id": user.id, "username": user.username, "role": user.role.value}


class SessionCheck:
    """Pure ASGI middleware: refuse (empty) sessions the server has ended.

    A session that still exists gets its user as the database has it now, so
    a demoted admin or a renamed user shows up within the cache time too.
    A cookie from before sessions were revocable has no ``sid`` and is
    simply logged out.
    """

    def __init__(self, app: ASGIApp, engine: sa.Engine, cache: auth.TokenCache) -> None:
        self.app = app
        self.engine = engine
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope.get("session") if scope["type"] in ("http", "websocket") else None
        if session and "user" in session:
            await self._check(session)
        await self.app(scope, receive, send)

    async def _check(self, session: dict[str, Any]) -> None:
        user = await self._owner(session.get(SESSION_ID_KEY))
        if user is None:
            session.clear()  # the response's Set-Cookie then expires the cookie
            return
        entry = session_entry(user)
        if session.get("user") != entry:
            session["user"] = entry

    async def _owner(self, session_id: Any) -> auth.User | None:
        if not isinstance(session_id, str) or not session_id:
            return None
        user = self.cache.get(session_id)
        if user is not None:
            return user
        found = await run_in_threadpool(auth.session_owner, self.engine, session_id)
        if found is None:
            return None
        user, expires_at = found
        self.cache.put(session_id, user, expires_at)
        return user
