"""Request dependencies: the manager, the caller, and role checks.

Callers authenticate with ``Authorization: Bearer <token>``. The web pages'
session cookie is also accepted, but only for safe (read) methods, so a
cross-site form can never change anything through the API; web forms go
through the web routes, which check a CSRF token.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from cocoa.api.errors import ApiError
from cocoa.auth import Role, TokenCache, User, authenticate_token
from cocoa.config import Settings
from cocoa.jobs.manager import JobManager

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


def session_user(request: Request) -> User | None:
    """The user of the web session cookie, if any."""
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
) -> User:
    """``async``: a token checked recently comes from the per-process cache
    without a hop to the thread pool; only a cache miss queries the database."""
    if credentials is not None:
        user = await _token_user(request, credentials.credentials)
        if user is None:
            raise ApiError(401, "Invalid or revoked API token.", "invalid_token",
                           headers={"WWW-Authenticate": "Bearer"})
        return user
    if request.method in SAFE_METHODS:
        user = session_user(request)
        if user is not None:
            return user
    raise ApiError(401, "Authentication required: send 'Authorization: Bearer <token>'.",
                   "missing_token", headers={"WWW-Authenticate": "Bearer"})


async def _token_user(request: Request, token: str) -> User | None:
    cache = token_cache(request)
    user = cache.get(token)
    if user is None:
        user = await run_in_threadpool(authenticate_token, get_engine(request), token)
        if user is not None:
            cache.put(token, user)
    return user


def token_cache(request: Request) -> TokenCache:
    cache: TokenCache = request.app.state.token_cache
    return cache


async def manager_dependency(request: Request) -> JobManager:
    """``async`` on purpose: FastAPI runs sync dependencies in its threadpool,
    and a hop to a thread per trivial lookup costs more than the lookup."""
    return get_manager(request)


async def require_admin(user: Annotated[User, Depends(current_user)]) -> User:
    """``async`` (no I/O): saves a threadpool hop on every write."""
    if not user.is_admin:
        raise ApiError(403, f"User {user.username!r} has role {user.role.value!r}; "
                       "this action needs 'admin'.", "forbidden")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(require_admin)]
Manager = Annotated[JobManager, Depends(manager_dependency)]
