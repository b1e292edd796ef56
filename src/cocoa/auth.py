"""Users, roles, API tokens and web sessions.

Passwords are hashed with Argon2id (argon2-cffi). API tokens are 32 random
bytes shown once; only their SHA-256 is stored - a fast hash is right here
because the token itself has full entropy, and lookups stay one indexed query.
Web sessions work the same way: the signed cookie carries a random id, the
``sessions`` table its SHA-256, so deleting the row ends the session however
many copies of the cookie exist.

User names are compared by :func:`username_key` (NFKC, then casefold):
"Admin" and "admin" are one user, and either logs in; the name keeps the
spelling it was created with.

Login throttling and the bound on concurrent password checks live in
:mod:`cocoa.login_guard`; this module only hashes and looks up.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cocoa.db.engine import reading, writing
from cocoa.db.tables import api_tokens, sessions, users
from cocoa.jobs.model import as_utc, iso, utcnow

log = logging.getLogger("cocoa.auth")

TOKEN_PREFIX = "cct_"
MIN_PASSWORD_LENGTH = 12  # the default of COCOA_MIN_PASSWORD_LENGTH
MAX_PASSWORD_LENGTH = 1024  # as the token API accepts
MAX_USERNAME_LENGTH = 128
SESSION_SECONDS = 12 * 3600  # a web login lasts this long (cookie and server row alike)
TOKEN_TOUCH_SECONDS = 60.0  # last_used_at is written at most this often per token
_hasher = PasswordHasher()


class Role(StrEnum):
    ADMIN = "admin"  # everything
    VIEWER = "viewer"  # read only


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    token_name: str | None = None  # the API token this request authenticated with, if any

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def actor(self) -> str:
        """Who did it, for a job's history: ``alice`` (a web session or
        password login) or ``alice (token ci-bot)`` (an API token)."""
        return f"{self.username} (token {self.token_name})" if self.token_name else self.username


class AuthError(Exception):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --------------------------------------------------------------------------- users


def username_key(username: str) -> str:
    """The form user names are compared in. NFKC folds look-alike forms
    (full-width letters, ligatures) and casefold is Unicode case-insensitivity,
    done here rather than by the database because SQLite's ``lower()`` only
    folds ASCII: both backends must agree on who is the same user."""
    return unicodedata.normalize("NFKC", username.strip()).casefold()


def check_username(username: str) -> str:
    """The name as it will be stored, or :class:`AuthError` saying what to fix."""
    username = username.strip()
    if not username:
        raise AuthError("Username must not be empty.")
    if any(unicodedata.category(ch).startswith("C") for ch in username):
        raise AuthError("Username must not contain control or invisible characters.")
    if len(username) > MAX_USERNAME_LENGTH or len(username_key(username)) > MAX_USERNAME_LENGTH:
        raise AuthError(f"Username must be at most {MAX_USERNAME_LENGTH} characters.")
    return username


def check_password(password: str, min_length: int = MIN_PASSWORD_LENGTH) -> None:
    """The password policy every way of setting a password goes through:
    length is what makes a password hard to guess (no composition rules)."""
    if len(password) < min_length:
        raise AuthError(f"Password must be at least {min_length} characters (it has {len(password)}).")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError(f"Password must be at most {MAX_PASSWORD_LENGTH} characters.")
    if "\x00" in password:
        raise AuthError("Password must not contain NUL characters.")


def create_user(engine: sa.Engine, username: str, password: str | None, role: Role, *,
                min_password_length: int = MIN_PASSWORD_LENGTH) -> User:
    """``password=None``: a user that can only use API tokens made for it."""
    username = check_username(username)
    if password is not None:
        check_password(password, min_password_length)
    key = username_key(username)
    password_hash = _hasher.hash(password) if password is not None else None
    try:
        with writing(engine).begin() as conn:
            exists = conn.execute(sa.select(users.c.username).where(users.c.username_key == key)).first()
            if exists:
                raise AuthError(_exists_message(username, exists.username))
            user_id: int = conn.execute(users.insert().values(
                username=username, username_key=key, role=role.value, created_at=utcnow(),
                password_hash=password_hash,
            ).returning(users.c.id)).scalar_one()
    except sa.exc.IntegrityError as exc:  # created by someone else in the meantime
        raise AuthError(_exists_message(username, username)) from exc
    return User(int(user_id), username, role)


def _exists_message(asked: str, stored: str) -> str:
    if asked == stored:
        return f"User {stored!r} already exists."
    return f"User {stored!r} already exists (user names are case-insensitive, so {asked!r} is the same user)."


def set_password(engine: sa.Engine, username: str, password: str, *,
                 min_password_length: int = MIN_PASSWORD_LENGTH) -> int:
    """Change the password and end every web session of the user (anyone who
    knew the old password may have logged in with it). Returns how many
    sessions ended. API tokens are separate credentials and stay valid."""
    check_password(password, min_password_length)
    password_hash = _hasher.hash(password)
    key = username_key(username)
    with writing(engine).begin() as conn:
        user_id = conn.execute(sa.select(users.c.id).where(users.c.username_key == key)).scalar()
        if user_id is None:
            raise AuthError(f"No user {username!r}.")
        conn.execute(users.update().where(users.c.id == user_id).values(password_hash=password_hash))
        ended = conn.execute(sessions.delete().where(sessions.c.user_id == user_id)).rowcount
    return int(ended or 0)


def get_user(engine: sa.Engine, username: str) -> User | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username_key == username_key(username))
                           ).one_or_none()
    return User(row.id, row.username, Role(row.role)) if row else None


def verify_password(engine: sa.Engine, username: str, password: str) -> User | None:
    """Argon2 is memory-hard and deliberately slow: call it through
    :class:`cocoa.login_guard.LoginGuard`, which throttles and bounds it."""
    with reading(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.username_key == username_key(username))
                           ).one_or_none()
    if row is None or not row.password_hash:
        _hasher.hash(password)  # same work either way: no user enumeration by timing
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(row.id, row.username, Role(row.role))


# --------------------------------------------------------------------------- tokens


def create_token(engine: sa.Engine, username: str, name: str = "default", *,
                 expires_at: datetime | None = None) -> tuple[str, dict[str, Any]]:
    """Return the new token (shown once) and its listing entry.
    ``expires_at=None``: the token works until it is revoked."""
    user = get_user(engine, username)
    if user is None:
        raise AuthError(f"No user {username!r}; create it with `cocoa user create`.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    name = name[:128] or "default"
    with writing(engine).begin() as conn:
        token_id: int = conn.execute(api_tokens.insert().values(
            user_id=user.id, name=name, prefix=token[:12],
            token_hash=hash_token(token), created_at=now, expires_at=expires_at,
        ).returning(api_tokens.c.id)).scalar_one()
    return token, {"id": int(token_id), "name": name, "prefix": token[:12], "username": user.username,
                   "role": user.role.value, "created_at": iso(now), "last_used_at": None,
                   "revoked_at": None, "expires_at": iso(expires_at)}


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """What the database says about a presented token that exists and is not revoked."""

    user: User
    token_id: int
    expires_at: datetime | None
    last_used_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def needs_touch(self, now: datetime) -> bool:
        """Whether ``last_used_at`` is stale enough to be worth a write."""
        return self.last_used_at is None or now - self.last_used_at >= timedelta(seconds=TOKEN_TOUCH_SECONDS)


def check_token(engine: sa.Engine, token: str) -> TokenCheck | None:
    """None for an unknown or revoked token; expiry is left to the caller so
    it can say "expired" rather than "invalid"."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with reading(engine) as conn:
        row = conn.execute(
            sa.select(users.c.id, users.c.username, users.c.role, api_tokens.c.id.label("token_id"),
                      api_tokens.c.expires_at, api_tokens.c.last_used_at,
                      api_tokens.c.name.label("token_name"))
            .select_from(api_tokens.join(users, users.c.id == api_tokens.c.user_id))
            .where(api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None))
        ).one_or_none()
    if row is None:
        return None
    return TokenCheck(User(row.id, row.username, Role(row.role), row.token_name), int(row.token_id),
                      as_utc(row.expires_at), as_utc(row.last_used_at))


def authenticate_token(engine: sa.Engine, token: str) -> User | None:
    """The token's user, or None if it is unknown, revoked or expired."""
    check = check_token(engine, token)
    if check is None or check.expired(utcnow()):
        return None
    return check.user


def touch_token(engine: sa.Engine, token_id: int) -> None:
    """Record that a token was used, unless that was recorded within the last
    minute (by this process or any other: the condition is in the UPDATE).

    Best effort, after the response: bookkeeping must never fail a request,
    so a locked or unavailable database only costs this one timestamp.
    """
    now = utcnow()
    stale = now - timedelta(seconds=TOKEN_TOUCH_SECONDS)
    try:
        with writing(engine).begin() as conn:
            conn.execute(api_tokens.update()
                         .where(api_tokens.c.id == token_id,
                                sa.or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at <= stale))
                         .values(last_used_at=now))
    except sa.exc.OperationalError as exc:
        log.warning("could not record the use of API token %s: %s", token_id, exc.orig or exc)


class TokenCache:
    """API tokens (and web sessions) this process has verified recently.

    Checking a token cost a query and a hop to the thread pool on every
    request - a third of a small GET. Here a token is checked against the
    database at most once per ``ttl_seconds`` per process. Revoking through
    the API clears this process's cache at once; a revocation made elsewhere
    (the CLI, another process or host) takes effect within ``ttl_seconds``.
    ``ttl_seconds=0`` checks every request. An entry never outlives the
    credential's own expiry.
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

    def put(self, token: str, user: User, expires_at: datetime | None = None) -> None:
        seconds = self.ttl_seconds
        if expires_at is not None:
            seconds = min(seconds, (expires_at - utcnow()).total_seconds())
        if seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude, and rare: every cached token is simply re-checked
        self._entries[hash_token(token)] = (user, time.monotonic() + seconds)

    def discard(self, token: str) -> None:
        self._entries.pop(hash_token(token), None)

    def clear(self) -> None:
        self._entries.clear()


def list_tokens(engine: sa.Engine, username: str | None = None) -> list[dict[str, Any]]:
    query = (
        sa.select(api_tokens, users.c.username, users.c.role)
        .select_from(api_tokens.join(users, users.c.id == api_tokens.c.user_id))
        .order_by(api_tokens.c.id)
    )
    if username:
        query = query.where(users.c.username_key == username_key(username))
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    return [
        {"id": r.id, "name": r.name, "prefix": r.prefix, "username": r.username, "role": r.role,
         "created_at": iso(r.created_at), "last_used_at": iso(r.last_used_at),
         "revoked_at": iso(r.revoked_at), "expires_at": iso(r.expires_at)}
        for r in rows
    ]


def active_tokens(engine: sa.Engine, username: str, name: str) -> list[dict[str, Any]]:
    """The user's tokens with this label that still work (not revoked, not expired)."""
    now = utcnow()
    return [t for t in list_tokens(engine, username)
            if t["name"] == name and t["revoked_at"] is None
            and (t["expires_at"] is None or datetime.fromisoformat(t["expires_at"]) > now)]


def revoke_token(engine: sa.Engine, token_id: int, username: str | None = None) -> bool:
    """Revoke; ``username`` restricts it to that user's own tokens."""
    where = [api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)]
    if username:
        where.append(api_tokens.c.user_id.in_(
            sa.select(users.c.id).where(users.c.username_key == username_key(username))))
    with writing(engine).begin() as conn:
        result = conn.execute(api_tokens.update().where(*where).values(revoked_at=utcnow()))
    return result.rowcount > 0


# --------------------------------------------------------------------------- web sessions


def create_session(engine: sa.Engine, user_id: int, seconds: float = SESSION_SECONDS) -> str:
    """A new server-side session; returns the id for the cookie (only its
    hash is stored). Sessions that have expired, anyone's, are deleted in the
    same transaction, so the table holds live sessions only."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    with writing(engine).begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.expires_at <= now))
        conn.execute(sessions.insert().values(id=hash_token(session_id), user_id=user_id, created_at=now,
                                              expires_at=now + timedelta(seconds=seconds)))
    return session_id


def session_owner(engine: sa.Engine, session_id: str) -> tuple[User, datetime] | None:
    """The user of a live session and when it expires; None once it has
    ended (logout, password change, expiry, user deleted)."""
    with reading(engine) as conn:
        row = conn.execute(
            sa.select(users.c.id, users.c.username, users.c.role, sessions.c.expires_at)
            .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
            .where(sessions.c.id == hash_token(session_id))
        ).one_or_none()
    expires_at = as_utc(row.expires_at) if row else None
    if row is None or expires_at is None or expires_at <= utcnow():
        return None
    return User(row.id, row.username, Role(row.role)), expires_at


def end_session(engine: sa.Engine, session_id: str) -> None:
    with writing(engine).begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.id == hash_token(session_id)))
