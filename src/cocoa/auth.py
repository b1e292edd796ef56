"""Users, roles and API tokens.

Passwords are hashed with Argon2id (argon2-cffi). API tokens are 32 random
bytes shown once; only their SHA-256 is stored - a fast hash is right here
because the token itself has full entropy, and lookups stay one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cocoa.db.engine import reading, writing
from cocoa.db.tables import api_tokens, users
from cocoa.jobs.jobs import iso, utcnow

TOKEN_PREFIX = "cct_"
_hasher = PasswordHasher()


class Role(StrEnum):
    ADMIN = "admin"  # everything
    VIEWER = "viewer"  # read only


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class AuthError(Exception):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(engine: sa.Engine, username: str, password: str | None, role: Role) -> User:
    username = username.strip()
    if not username:
        raise AuthError("Username must not be empty.")
    with writing(engine).begin() as conn:
        exists = conn.execute(sa.select(users.c.id).where(users.c.username == username)).first()
        if exists:
            raise AuthError(f"User {username!r} already exists.")
        user_id: int = conn.execute(users.insert().values(
            username=username, role=role.value, created_at=utcnow(),
            password_hash=_hasher.hash(password) if password else None,
        ).returning(users.c.id)).scalar_one()
    return User(int(user_id), username, role)


def set_password(engine: sa.Engine, username: str, password: str) -> None:
    with writing(engine).begin() as conn:
        result = conn.execute(users.update().where(users.c.username == username)
                              .values(password_hash=_hasher.hash(password)))
    if result.rowcount == 0:
        raise AuthError(f"No user {username!r}.")


def get_user(engine: sa.Engine, username: str) -> User | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).one_or_none()
    return User(row.id, row.username, Role(row.role)) if row else None


def verify_password(engine: sa.Engine, username: str, password: str) -> User | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).one_or_none()
    if row is None or not row.password_hash:
        _hasher.hash(password)  # same work either way: no user enumeration by timing
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(row.id, row.username, Role(row.role))


def create_token(engine: sa.Engine, username: str, name: str = "default") -> tuple[str, dict[str, Any]]:
    """Return the new token (shown once) and its listing entry."""
    user = get_user(engine, username)
    if user is None:
        raise AuthError(f"No user {username!r}; create it with `cocoa user create`.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with writing(engine).begin() as conn:
        token_id: int = conn.execute(api_tokens.insert().values(
            user_id=user.id, name=name[:128] or "default", prefix=token[:12],
            token_hash=hash_token(token), created_at=now,
        ).returning(api_tokens.c.id)).scalar_one()
    return token, {"id": int(token_id), "name": name, "prefix": token[:12], "username": user.username,
                   "role": user.role.value, "created_at": iso(now), "last_used_at": None,
                   "revoked_at": None}


def authenticate_token(engine: sa.Engine, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    with reading(engine) as conn:
        row = conn.execute(
            sa.select(users.c.id, users.c.username, users.c.role)
            .select_from(api_tokens.join(users, users.c.id == api_tokens.c.user_id))
            .where(api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None))
        ).one_or_none()
    return User(row.id, row.username, Role(row.role)) if row else None


class TokenCache:
    """API tokens this process has verified recently.

    Checking a token cost a query and a hop to the thread pool on every
    request - a third of a small GET. Here a token is checked against the
    database at most once per ``ttl_seconds`` per process. Revoking through
    the API clears this process's cache at once; a revocation made elsewhere
    (the CLI, another process or host) takes effect within ``ttl_seconds``.
    ``ttl_seconds=0`` checks every request.
    """

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[User, float]] = {}

    def get(self, token: str) -> User | None:
        entry = self._entries.get(hash_token(token))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, token: str, user: User) -> None:
        if self.ttl_seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude, and rare: every cached token is simply re-checked
        self._entries[hash_token(token)] = (user, time.monotonic() + self.ttl_seconds)

    def clear(self) -> None:
        self._entries.clear()


def list_tokens(engine: sa.Engine, username: str | None = None) -> list[dict[str, Any]]:
    query = (
        sa.select(api_tokens, users.c.username, users.c.role)
        .select_from(api_tokens.join(users, users.c.id == api_tokens.c.user_id))
        .order_by(api_tokens.c.id)
    )
    if username:
        query = query.where(users.c.username == username)
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    return [
        {"id": r.id, "name": r.name, "prefix": r.prefix, "username": r.username, "role": r.role,
         "created_at": iso(r.created_at), "last_used_at": iso(r.last_used_at),
         "revoked_at": iso(r.revoked_at)}
        for r in rows
    ]


def revoke_token(engine: sa.Engine, token_id: int, username: str | None = None) -> bool:
    """Revoke; ``username`` restricts it to that user's own tokens."""
    where = [api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)]
    if username:
        where.append(api_tokens.c.user_id.in_(sa.select(users.c.id).where(users.c.username == username)))
    with writing(engine).begin() as conn:
        result = conn.execute(api_tokens.update().where(*where).values(revoked_at=utcnow()))
    return result.rowcount > 0
