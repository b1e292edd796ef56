"""The worker's webhook sender: posts the outbox (:mod:`cocoa.jobs.webhooks`).

A thread of every worker process, apart from the job threads: a slow or dead
receiver delays only other deliveries, never a job. Decisions:

* Several workers may run senders on one database. Each takes a due
  delivery by one conditional UPDATE that moves its ``next_attempt_at`` past
  the attempt's time limit (a lease): only one sender wins the row, and a
  sender that dies mid-attempt leaves it due again once that lease runs out
  - after a restart the outbox simply resumes (at-least-once delivery).
* A 2xx answer is delivered; anything else (an error status, a refused
  connection, a timeout) is retried after an exponential backoff, up to
  ``COCOA_WEBHOOK_MAX_ATTEMPTS``; the last HTTP status and error stay on the
  row either way. Redirects are not followed (a redirect to an internal
  address would undo the SSRF check).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.db.tables import webhook_deliveries
from cocoa.jobs.model import utcnow
from cocoa.jobs.store import JobNotFound, JobStore, get_job
from cocoa.jobs.webhooks import WebhookUrlError, check_url, payload, signature

log = logging.getLogger("cocoa.webhooks")

POLL_SECONDS = 1.0
BATCH = 20  # deliveries taken per pass
USER_AGENT = "cocoa-webhooks/1"


class WebhookSender:
    """Posts due deliveries until ``stop`` is set."""

    def __init__(self, store: JobStore, stop: threading.Event, poll_seconds: float = POLL_SECONDS) -> None:
        self.store = store
        self.settings: Settings = store.settings
        self.stop = stop
        self.poll_seconds = poll_seconds

    def run(self) -> None:
        with httpx.Client(timeout=self.settings.webhook_timeout_seconds, follow_redirects=False,
                          headers={"User-Agent": USER_AGENT}) as client:
            while not self.stop.is_set():
                try:
                    sent = self.send_due(client)
                except Exception:  # the database is away: try again later, never die
                    log.warning("webhook sender: pass failed", exc_info=True)
                    sent = 0
                if not sent:
                    self.stop.wait(self.poll_seconds)

    def send_due(self, client: httpx.Client) -> int:
        """One pass: take and post what is due; the number attempted."""
        attempted = 0
        for row_id in self._due_ids():
            if self.stop.is_set():
                break
            row = self._take(row_id)
            if row is not None:
                self._attempt(client, row)
                attempted += 1
        return attempted

    def _due_ids(self) -> list[int]:
        now = utcnow()
        with self.store.driver.autocommit(self.store.engine) as conn:
            found: list[Any] = list(conn.execute(
                sa.select(webhook_deliveries.c.id).where(webhook_deliveries.c.status == "pending",
                                                         webhook_deliveries.c.next_attempt_at <= now)
                .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id).limit(BATCH)
            ).scalars().all())
        return [int(i) for i in found]

    def _take(self, row_id: int) -> Any:
        """Lease one due delivery for this attempt; None if another sender took it."""
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.webhook_timeout_seconds + 30)
        with self.store.writer.begin() as conn:
            return conn.execute(
                webhook_deliveries.update().where(
                    webhook_deliveries.c.id == row_id, webhook_deliveries.c.status == "pending",
                    webhook_deliveries.c.next_attempt_at <= now,
                ).values(next_attempt_at=lease, attempts=webhook_deliveries.c.attempts + 1)
                .returning(*webhook_deliveries.c)
            ).one_or_none()

    def _attempt(self, client: httpx.Client, row: Any) -> None:
        status, error = None, None
        try:
            body = self._body(row)
            if row.url != self.settings.webhook_url:  # a job's own URL: DNS may have changed since
                check_url(row.url, allow_private=self.settings.webhook_allow_private)
            response = client.post(row.url, content=body, headers=self._headers(body))
            status = response.status_code
            if not 200 <= status < 300:
                error = f"The receiver answered HTTP {status}."
        except JobNotFound:
            error = "The job no longer exists."
        except WebhookUrlError as exc:
            error = str(exc)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self._record(row, status, error)

    def _body(self, row: Any) -> bytes:
        with self.store.driver.autocommit(self.store.engine) as conn:
            job = get_job(conn, row.job_id)
        return json.dumps(payload(row.event, job), separators=(",", ":")).encode()

    def _headers(self, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Cocoa-Timestamp": timestamp}
        if self.settings.webhook_secret:
            headers["X-Cocoa-Signature"] = signature(self.settings.webhook_secret, timestamp, body)
        return headers

    def _record(self, row: Any, status: int | None, error: str | None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"last_status": status, "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=now, next_attempt_at=None)
        elif row.attempts >= self.settings.webhook_max_attempts:
            values.update(status="failed", next_attempt_at=None)
            log.warning("webhook for job %s to %s given up after %d attempts: %s",
                        row.job_id, row.url, row.attempts, error)
        else:
            values["next_attempt_at"] = now + timedelta(seconds=backoff(self.settings, row.attempts))
            log.info("webhook for job %s to %s: attempt %d failed (%s); retrying", row.job_id, row.url,
                     row.attempts, error)
        with self.store.writer.begin() as conn:
            conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == row.id).values(**values))


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: doubling, capped."""
    return float(min(settings.webhook_backoff_seconds * 2 ** max(attempts - 1, 0),
                     settings.webhook_max_backoff_seconds))
