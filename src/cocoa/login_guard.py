"""What stands between a password guess and Argon2: a throttle and a bound.

Both the token API (``POST /api/v1/auth/tokens``) and the web login go
through :meth:`LoginGuard.attempt`.

**Throttle.** Failed logins are counted per user name (``user:<key>``, from
any address) and per client address (``addr:<ip>``; an IPv6 address counts
as its /64, which one client usually holds whole). After
``COCOA_LOGIN_USER_FAILURES`` failures for a name, or
``COCOA_LOGIN_ADDRESS_FAILURES`` from an address, each further attempt must
wait ``COCOA_LOGIN_DELAY_SECONDS``, doubling with every further failure up
to ``COCOA_LOGIN_MAX_DELAY_SECONDS``; an attempt during the wait is refused
with 429 and ``Retry-After`` *before* the password is looked at, so even the
right password is refused then. A success forgets the name's failures (not
the address's: a guesser with one account of its own must not be able to
wipe its address's record). Names that do not exist are counted the same
way, so the throttle does not reveal which names exist.

The counters live in the database (``login_failures``), not in memory: they
hold across the processes of ``cocoa serve --processes N``, across API hosts
and across restarts, at the cost of one write per *failed* login, which is
nothing next to the Argon2 work. The price of per-name throttling is that
anyone can make a name wait (at most ``COCOA_LOGIN_MAX_DELAY_SECONDS``);
that is the usual trade, and API tokens are unaffected.

**Bound.** Argon2 as configured takes 64 MiB per check, so parallel logins
multiply a server's memory. A semaphore per process lets
``COCOA_PASSWORD_CHECK_SLOTS`` checks run at once; a login waits up to
``COCOA_PASSWORD_CHECK_WAIT_SECONDS`` for a slot, then gets 503 with
``Retry-After``.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from cocoa import auth
from cocoa.config import Settings
from cocoa.db.driver import driver_for
from cocoa.db.engine import reading, writing
from cocoa.db.tables import login_failures
from cocoa.jobs.model import as_utc, utcnow

PRUNE_EVERY_SECONDS = 60.0
BUSY_RETRY_SECONDS = 2


class LoginRefused(Exception):
    """A login that did not succeed: 401 (wrong), 429 (throttled) or 503 (busy)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def wrong_credentials() -> LoginRefused:
    return LoginRefused(401, "invalid_credentials", "Wrong username or password.")


def address_key(address: str | None) -> str:
    """``addr:<ip>``; IPv6 by /64, since a single client is usually given a
    whole /64 and could otherwise step through 2^64 addresses."""
    if not address:
        return "addr:unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address[:64]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"addr:{ip}"


def user_key(username: str) -> str:
    return f"user:{auth.username_key(username)[:auth.MAX_USERNAME_LENGTH]}"


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    threshold: int
    refusal: str  # what is throttled, for the message: "this account", "your address"


class LoginThrottle:
    """Failure counters in ``login_failures``; see the module docstring."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._pruned_at = 0.0
        self._prune_lock = threading.Lock()

    def limits(self, username: str, address: str | None) -> list[Limit]:
        return [Limit(user_key(username), self.settings.login_user_failures, "this account"),
                Limit(address_key(address), self.settings.login_address_failures, "your address")]

    def refusal(self, limits: list[Limit]) -> LoginRefused | None:
        """429 while any of the limits is in its wait; the longest wait wins."""
        now = utcnow()
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(login_failures.c.key, login_failures.c.blocked_until)
                                .where(login_failures.c.key.in_([limit.key for limit in limits]))).all()
        blocked = {row.key: as_utc(row.blocked_until) for row in rows}
        waits = [(until, limit) for limit in limits
                 if (until := blocked.get(limit.key)) is not None and until > now]
        if not waits:
            return None
        until, limit = max(waits, key=lambda wait: wait[0])
        seconds = max(1, math.ceil((until - now).total_seconds()))
        return LoginRefused(429, "too_many_failed_logins",
                            f"Too many failed logins for {limit.refusal}; try again in {seconds} s.", seconds)

    def record_failure(self, limits: list[Limit]) -> None:
        """Count a failure against every limit, atomically per key on both
        backends (an upsert that increments), and start or lengthen the wait."""
        now = utcnow()
        window_start = now - timedelta(seconds=self.settings.login_failure_window_seconds)
        with writing(self.engine).begin() as conn:
            for limit in limits:
                failures = self._count(conn, limit.key, now, window_start)
                if failures >= limit.threshold:
                    conn.execute(login_failures.update().where(login_failures.c.key == limit.key)
                                 .values(blocked_until=now + self.delay(failures - limit.threshold)))
        self._maybe_prune(now, window_start)

    def delay(self, failures_over: int) -> timedelta:
        """The wait after the threshold's failure (``failures_over=0``) and each one after it."""
        seconds = self.settings.login_delay_seconds * 2 ** min(failures_over, 32)
        return timedelta(seconds=min(seconds, self.settings.login_max_delay_seconds))

    def _count(self, conn: sa.Connection, key: str, now: datetime, window_start: datetime) -> int:
        table = login_failures.c
        upsert = driver_for(conn).insert(login_failures).values(key=key, failures=1, last_failure_at=now)
        upsert = upsert.on_conflict_do_update(
            index_elements=[table.key],
            set_={"failures": sa.case((table.last_failure_at > window_start, table.failures + 1), else_=1),
                  "last_failure_at": now},
        )
        return int(conn.execute(upsert.returning(table.failures)).scalar_one())

    def record_success(self, username: str) -> None:
        """Forget the name's failures (read first: most logins have none, and
        a read never queues behind SQLite's writer)."""
        key = user_key(username)
        with reading(self.engine) as conn:
            found = conn.execute(sa.select(login_failures.c.key).where(login_failures.c.key == key)).first()
        if found:
            with writing(self.engine).begin() as conn:
                conn.execute(login_failures.delete().where(login_failures.c.key == key))

    def _maybe_prune(self, now: datetime, window_start: datetime) -> None:
        """Drop forgotten counters, at most once a minute per process, so a
        spray of made-up names does not grow the table without end."""
        with self._prune_lock:
            if time.monotonic() - self._pruned_at < PRUNE_EVERY_SECONDS:
                return
            self._pruned_at = time.monotonic()
        with writing(self.engine).begin() as conn:
            conn.execute(login_failures.delete().where(
                login_failures.c.last_failure_at < window_start,
                sa.or_(login_failures.c.blocked_until.is_(None), login_failures.c.blocked_until < now)))


class PasswordGate:
    """At most ``slots`` password checks at once in this process."""

    def __init__(self, slots: int, wait_seconds: float) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self.wait_seconds = wait_seconds

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise LoginRefused(503, "login_busy", "Too many logins are being checked at once; "
                               f"try again in {BUSY_RETRY_SECONDS} s.", BUSY_RETRY_SECONDS)
        try:
            yield
        finally:
            self._slots.release()


class LoginGuard:
    """One per server process (``app.state.login_guard``)."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.throttle = LoginThrottle(engine, settings)
        self.gate = PasswordGate(settings.password_check_slots, settings.password_check_wait_seconds)

    def attempt(self, username: str, password: str, address: str | None) -> auth.User:
        """The user, or :class:`LoginRefused`. Blocking: call from a thread.

        The throttle is checked before waiting for a slot (no point queueing
        a refused attempt) and again once holding one, so a burst of parallel
        guesses is stopped as soon as the failures before it are counted.
        """
        limits = self.throttle.limits(username, address)
        self._raise_if_throttled(limits)
        with self.gate.slot():
            self._raise_if_throttled(limits)
            user = auth.verify_password(self.engine, username, password)
            if user is None:
                self.throttle.record_failure(limits)
                raise wrong_credentials()
        self.throttle.record_success(username)
        return user

    def _raise_if_throttled(self, limits: list[Limit]) -> None:
        refused = self.throttle.refusal(limits)
        if refused is not None:
            raise refused
