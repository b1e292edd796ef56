"""Request dependencies: the manager, the caller, and role checks.

Callers authenticate with ``Authorization: Bearer <token>``. The web pages'
session cookie is also accepted, but only for safe (read) methods, so a
cross-site form can never change anything through the API; web forms go
through the web routes, which check a CSRF token.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import BackgroundTasks, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from cocoa.api.errors import ApiError
from cocoa.api.job_objects import JobObjects
from cocoa.auth import Role, TokenCache, User, check_token, touch_token
from cocoa.config import Settings
from cocoa.jobs.manager import JobManager
from cocoa.jobs.model import iso, utcnow
from cocoa.login_guard import LoginGuard

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
bearer = HTTPBearer(auto_error=False,
                    description="An API token from `cocoa token create` or POST /api/v1/auth/tokens")


def get_manager(request: Request) -> JobManager:
    manager: JobManager = request.app.state.manager
    return manager


def get_engine(request: Request) -> sa.Engine:
    return get_manager(request).engine


def get_settings(request: Request) -> Settings:
    return get_manager(request).settings


def client_address(request: Request) -> str | None:
    """The peer's address. ``X-Forwarded-For`` is honoured only from the
    proxies in ``COCOA_FORWARDED_ALLOW_IPS`` (Uvicorn applies it before the
    request gets here); otherwise anyone could pick an address per request."""
    return request.client.host if request.client else None


def login_guard(request: Request) -> LoginGuard:
    guard: LoginGuard = request.app.state.login_guard
    return guard


def session_user(request: Request) -> User | None:
    """The user of the web session cookie, if any (the session was checked
    against the server's ``sessions`` table by :mod:`cocoa.api.sessions`)."""
    data = request.scope.get("session", {}).get("user") if "session" in request.scope else None
    if not isinstance(data, dict):
        return None
    try:
        return User(int(data["id"]), str(data["username"]), Role(data["role"]))
    except (KeyError, ValueError, TypeError):
        return None


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    background: BackgroundTasks,
) -> User:
    """``async``: a token checked recently comes from the per-process cache
    without a hop to the thread pool; only a cache miss queries the database."""
    if credentials is not None:
        return await _token_user(request, credentials.credentials, background)
    if request.method in SAFE_METHODS:
        user = session_user(request)
        if user is not None:
            return user
    raise ApiError(401, "Authentication required: send 'Authorization: Bearer <token>'.",
                   "missing_token", headers={"WWW-Authenticate": "Bearer"})


async def _token_user(request: Request, token: str, background: BackgroundTasks) -> User:
    """The token's user, or 401 saying whether it is unknown/revoked or expired.

    ``last_used_at`` is written after the response (a background task) and
    only when a cache miss finds it a minute old or more: never a write in
    the request's path, at most one a minute per token.
    """
    cache = token_cache(request)
    user = cache.get(token)
    if user is not None:
        return user
    engine = get_engine(request)
    check = await run_in_threadpool(check_token, engine, token)
    if check is None:
        raise ApiError(401, "Invalid or revoked API token.", "invalid_token",
                       headers={"WWW-Authenticate": "Bearer"})
    now = utcnow()
    if check.expired(now):
        raise ApiError(401, f"API token expired at {iso(check.expires_at)}; create a new one with "
                       "`cocoa token create` or POST /api/v1/auth/tokens.", "token_expired",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    cache.put(token, check.user, check.expires_at)
    if check.needs_touch(now):
        background.add_task(touch_token, engine, check.token_id)
    return check.user


def token_cache(request: Request) -> TokenCache:
    cache: TokenCache = request.app.state.token_cache
    return cache


async def manager_dependency(request: Request) -> JobManager:
    """``async`` on purpose: FastAPI runs sync dependencies in its threadpool,
    and a hop to a thread per trivial lookup costs more than the lookup."""
    return get_manager(request)


def get_job_objects(request: Request) -> JobObjects:
    objects: JobObjects = request.app.state.job_objects
    return objects


async def job_objects_dependency(request: Request) -> JobObjects:
    """``async`` for the same reason as :func:`manager_dependency`."""
    return get_job_objects(request)


async def require_admin(user: Annotated[User, Depends(current_user)]) -> User:
    """``async`` (no I/O): saves a threadpool hop on every write."""
    if not user.is_admin:
        raise ApiError(403, f"User {user.username!r} has role {user.role.value!r}; "
                       "this action needs 'admin'.", "forbidden")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(require_admin)]
Manager = Annotated[JobManager, Depends(manager_dependency)]
Objects = Annotated[JobObjects, Depends(job_objects_dependency)]
