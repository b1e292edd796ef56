"""Webhooks: being told when a job is done (issue 19).

A job that completes, fails or is cancelled gets one row in the
``webhook_deliveries`` outbox, written by :func:`enqueue` *in the transaction
that finishes the job* - so a delivery is never lost to a crash between the
two, and never sent for a state that rolled back. The worker's
:class:`cocoa.jobs.webhook_sender.WebhookSender` posts it later, with
retries; the job itself never waits for a receiver.

The URL is the job's own (``job_webhooks``, given at creation) or else the
global ``COCOA_WEBHOOK_URL``. The body is ``{"event", "job"}``; the headers
``X-Cocoa-Timestamp`` and ``X-Cocoa-Signature: sha256=<hex>``, an
HMAC-SHA256 of ``"<timestamp>.<body>"`` with ``COCOA_WEBHOOK_SECRET`` - the
timestamp is signed so a receiver can refuse replays of old deliveries.

Per-job URLs come from API clients, so :func:`check_url` refuses anything
that is not http(s) and - unless ``COCOA_WEBHOOK_ALLOW_PRIVATE`` - any host
that resolves to a loopback, private, link-local or otherwise internal
address (SSRF); the sender checks again before each attempt, as DNS may
have changed since.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.db.tables import job_webhooks, webhook_deliveries
from cocoa.jobs.model import Job, Status, iso, utcnow

FINAL_EVENTS = {Status.COMPLETED.value: "job.completed", Status.FAILED.value: "job.failed",
                Status.CANCELLED.value: "job.cancelled"}
MAX_URL = 2048


class WebhookUrlError(ValueError):
    """A webhook URL that will not be called, with the reason."""


# ---------------------------------------------------------------------- at creation


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if it is an http(s) URL whose host resolves only to public
    addresses (any address when ``allow_private``); else WebhookUrlError."""
    text = url.strip()
    if len(text) > MAX_URL:
        raise WebhookUrlError(f"webhook_url is longer than {MAX_URL} characters.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlError(f"webhook_url is not a valid URL: {exc}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlError("webhook_url must be an http:// or https:// URL with a host, "
                              f"e.g. https://hooks.example.org/cocoa (got {text[:100]!r}).")
    if parts.username or parts.password:
        raise WebhookUrlError("webhook_url must not carry a user name or password; "
                              "receivers authenticate deliveries by their signature.")
    if not allow_private:
        internal = _internal_addresses(parts.hostname, port or (443 if parts.scheme == "https" else 80))
        if internal:
            raise WebhookUrlError(
                f"webhook_url's host {parts.hostname!r} resolves to an internal address ({internal}); "
                "webhooks go to public addresses only (set COCOA_WEBHOOK_ALLOW_PRIVATE=true to allow "
                "loopback and private networks).")
    return text


def _internal_addresses(host: str, port: int) -> str | None:
    """The first loopback/private/link-local/reserved address ``host`` has, if any."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookUrlError(f"webhook_url's host {host!r} cannot be resolved ({exc}).") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return str(address)
    return None


def subscribe(conn: sa.Connection, job_id: str, url: str | None) -> None:
    """Record a job's own webhook URL (in its creation transaction)."""
    if url:
        conn.execute(job_webhooks.insert().values(job_id=job_id, url=url))


def job_url(conn: sa.Connection, job_id: str) -> str | None:
    return conn.execute(sa.select(job_webhooks.c.url).where(job_webhooks.c.job_id == job_id)).scalar()


# ---------------------------------------------------------------------- when a job ends


def enqueue(conn: sa.Connection, job_id: str, status: str, settings: Settings) -> None:
    """Queue the delivery of a job's final ``status`` - in the transaction
    that writes that status. One INSERT .. SELECT: nothing is queued when
    neither the job nor the settings name a URL."""
    event = FINAL_EVENTS.get(str(status))
    if event is None:
        return
    params: dict[str, Any] = {"job_id": job_id, "event": event, "now": utcnow()}
    if settings.webhook_url:
        params["global_url"] = settings.webhook_url
    conn.execute(enqueue_statement(bool(settings.webhook_url)), params)


def queue(conn: sa.Connection, job_id: str, status: str, own_url: str | None, settings: Settings) -> None:
    """:func:`enqueue` when the job's own URL is known already (a worker's
    commit returns it): no statement at all when there is no URL."""
    event = FINAL_EVENTS.get(str(status))
    url = own_url or settings.webhook_url
    if event is None or not url:
        return
    now = utcnow()
    conn.execute(webhook_deliveries.insert(), {"job_id": job_id, "url": url, "event": event, "status": "pending",
                                               "attempts": 0, "next_attempt_at": now, "created_at": now})


@functools.cache
def enqueue_statement(with_global_url: bool) -> sa.Insert:
    """The outbox row of ``:job_id``'s ``:event`` at ``:now`` (URL: the
    job's own, else ``:global_url``). Built once: every job that ends runs
    it, and building the construct anew each time cost more than executing it."""
    own = (sa.select(job_webhooks.c.url).where(job_webhooks.c.job_id == sa.bindparam("job_id"))
           .scalar_subquery())
    url = sa.func.coalesce(own, sa.bindparam("global_url", type_=sa.String)) if with_global_url else own
    now = sa.bindparam("now", type_=webhook_deliveries.c.created_at.type)
    chosen = sa.select(
        sa.bindparam("job_id", type_=sa.String).label("job_id"), url.label("url"),
        sa.bindparam("event", type_=sa.String).label("event"),
        sa.literal("pending", sa.String).label("status"), sa.literal(0, sa.Integer).label("attempts"),
        now.label("next_attempt_at"), now.label("created_at"),
    ).where(url.is_not(None))
    return webhook_deliveries.insert().from_select(
        ["job_id", "url", "event", "status", "attempts", "next_attempt_at", "created_at"], chosen)


# ---------------------------------------------------------------------- what is sent


def payload(event: str, job: Job) -> dict[str, Any]:
    """The body: the event and the job as it ended (the public job object's
    fields, without the recent item errors)."""
    return {"event": event, "job": {
        "id": job.id, "type": job.type, "status": job.status.value, "progress": job.progress(),
        "created_at": iso(job.created_at), "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at), "updated_at": iso(job.updated_at),
        "created_by": job.created_by, "params": job.params, "result": job.result, "error": job.error,
        "error_count": job.error_count, "attempt": job.attempt, "retry_of": job.retry_of,
    }}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (tests and docs use it): constant-time compare."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def delivery_summary(conn: sa.Connection, job_id: str) -> dict[str, Any] | None:
    """``{url, status, attempts, last_status, last_error}`` of a job's latest delivery."""
    row = conn.execute(sa.select(webhook_deliveries).where(webhook_deliveries.c.job_id == job_id)
                       .order_by(webhook_deliveries.c.id.desc()).limit(1)).one_or_none()
    if row is None:
        return None
    return {"url": row.url, "event": row.event, "status": row.status, "attempts": row.attempts,
            "last_status": row.last_status, "last_error": row.last_error,
            "delivered_at": iso(row.delivered_at)}
