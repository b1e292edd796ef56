"""``/api/v1/auth``: exchange a password for an API token, list and revoke tokens.

Decisions:

* ``POST /auth/tokens`` is the one public endpoint besides the health checks:
  it is how a script without a token gets one. Bad credentials are a plain
  401 that does not say whether the user exists (and
  :func:`cocoa.auth.verify_password` spends the same Argon2 work either way).
  It goes through :class:`cocoa.login_guard.LoginGuard`: too many failures
  for the name or from the address are a 429 with ``Retry-After``, and a
  server already checking its share of passwords answers 503 with one.
* A token may be given an expiry (``expires_in_days`` or ``expires_at``); an
  expired token is a 401 ``token_expired``, so a script can tell "make a new
  one" from "this was never valid".
* Token self-management is open to every role: a viewer may list and revoke
  its *own* tokens; an admin sees and revokes everyone's. Revoking a token
  that is not yours (as a viewer) is a 404, like one that does not exist, so
  token ids of other users are not confirmed.
* The secret is shown only in the 201 response; only its SHA-256 is stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from cocoa import auth
from cocoa.api.deps import CurrentUser, Manager, client_address, login_guard, token_cache
from cocoa.api.errors import ApiError
from cocoa.api.schemas import Me, TokenCreated, TokenList, TokenRequest, errors
from cocoa.jobs.model import utcnow
from cocoa.login_guard import LoginRefused

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/tokens", status_code=201, response_model=TokenCreated,
             responses=errors(400, 401, 422, 429, 503))
def create_token(body: TokenRequest, manager: Manager, request: Request) -> dict[str, Any]:
    """Log in with username (any case) and password; the new token is in ``token``
    (shown once). Repeated failures are throttled: 429 with ``Retry-After``."""
    try:
        user = login_guard(request).attempt(body.username, body.password, client_address(request))
    except LoginRefused as exc:
        raise ApiError(exc.status, exc.message, exc.code, headers=exc.headers or None) from None
    token, entry = auth.create_token(manager.engine, user.username, body.name,
                                     expires_at=body.expiry(utcnow()))
    return {**entry, "token": token}


@router.get("/tokens", response_model=TokenList, responses=errors(401))
def list_tokens(user: CurrentUser, manager: Manager) -> dict[str, Any]:
    """An admin sees every token; anyone else sees their own. Secrets are never listed."""
    tokens = auth.list_tokens(manager.engine, None if user.is_admin else user.username)
    return {"tokens": tokens}


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response,
               responses=errors(401, 404))
def revoke_token(user: CurrentUser, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                 manager: Manager, request: Request) -> Response:
    """Revoke a token at once (an admin: any token; anyone else: their own)."""
    if not auth.revoke_token(manager.engine, token_id, None if user.is_admin else user.username):
        raise ApiError(404, f"No active token with id {token_id} that you may revoke.", "token_not_found")
    token_cache(request).clear()  # at once in this process; elsewhere within COCOA_TOKEN_CACHE_SECONDS
    return Response(status_code=204)


@router.get("/me", response_model=Me, responses=errors(401))
def me(user: CurrentUser) -> dict[str, Any]:
    """Who the token (or web session) belongs to."""
    return {"id": user.id, "username": user.username, "role": user.role.value}
