"""The worker loop: claim, run batches, heartbeat, reap.

One worker process runs up to one job per type at a time, each in its own
thread (the database already forbids two running jobs of one type). Any number
of workers on any hosts can share one database. Background threads:

* heartbeat - renews the leases this worker holds;
* maintenance - reaps expired leases, fails timed-out jobs, archives old ones;
* webhooks - posts the outbox of finished jobs' webhooks (cocoa.jobs.webhook_sender);
* listener (PostgreSQL only) - ``LISTEN`` for new work so idle workers start
  jobs within milliseconds; everywhere else, and as a fallback, short polling.

Stopping (SIGTERM/SIGINT or :meth:`Worker.stop`) lets each running job finish
its current batch, hands the job back to the queue and exits.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from types import FrameType

import sqlalchemy as sa

from cocoa.config import Settings
from cocoa.db.driver import connection_lost, driver_for
from cocoa.db.storage import storage_location, storage_problem
from cocoa.jobs import workers as worker_registry
from cocoa.jobs.forkserver import start_helper_server
from cocoa.jobs.manager import NOTIFY_CHANNEL, JobManager, Lease, LeaseLost
from cocoa.jobs.model import Job, Status
from cocoa.jobs.types import (
    JobFailed,
    RunContext,
    all_job_types,
    get_job_type,
    tune_garbage_collector,
)
from cocoa.jobs.uploads import open_upload
from cocoa.jobs.webhook_sender import WebhookSender

log = logging.getLogger("cocoa.worker")

RATE_SMOOTHING = 0.3  # weight of the newest batch in the moving rate


class Worker:
    def __init__(
        self, manager: JobManager, *, worker_id: str | None = None,
        types: list[str] | None = None,
    ) -> None:
        self.manager = manager
        self.settings: Settings = manager.settings
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.types = types
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._exited = threading.Event()
        self._running: dict[str, tuple[Lease, threading.Thread]] = {}  # type -> job
        self._lost: set[str] = set()
        self._unpublished_totals: dict[str, int] = {}
        self._lock = threading.Lock()
        manager.add_wake_listener(self._wake.set)

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        """Block until stopped; then drain gracefully."""
        tune_garbage_collector()
        log.info("worker %s started (types: %s)", self.id, ", ".join(self.types or ["all"]))
        self._registry_call(worker_registry.register, self.manager.engine, self.id, self.types)
        helpers = [
            threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True),
            threading.Thread(target=self._maintenance_loop, name="maintenance", daemon=True),
            threading.Thread(target=WebhookSender(self.manager, self._stopping).run, name="webhooks", daemon=True),
        ]
        if self.manager.driver.notifies:
            helpers.append(threading.Thread(target=self._listen_loop, name="listen", daemon=True))
        helper_modules = self._helper_modules()
        if helper_modules:
            helpers.append(threading.Thread(target=start_helper_server, args=(helper_modules,),
                                            name="helper-server", daemon=True))
        for thread in helpers:
            thread.start()
        try:
            while not self._stopping.is_set():
                # Clear before claiming: a wake-up that arrives while we claim
                # must not be lost, or the next job waits a whole poll interval.
                self._wake.clear()
                self._claim_available()
                self._wake.wait(self.settings.poll_seconds)
        finally:
            self._drain()
            self._exited.set()
            self._registry_call(worker_registry.deregister, self.manager.engine, self.id)
            _join_all(helpers, HELPER_EXIT_SECONDS)
        log.info("worker %s stopped", self.id)

    def _registry_call(self, operation: Callable[..., None], *args: object) -> None:
        """Registering is for people watching: a database hiccup must not stop the worker."""
        try:
            operation(*args)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("worker %s: worker registry not updated: %s", self.id, exc)

    def _helper_modules(self) -> list[str]:
        """The modules of this worker's job types that start helper processes."""
        known = all_job_types(include_hidden=True)
        names = [name for name in self.types or known if name in known]
        return sorted({type(job_type).__module__ for job_type in map(get_job_type, names)
                       if job_type.uses_helpers})

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("worker %s: %s received, finishing current batches",
                     self.id, signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="worker", daemon=True)
        thread.start()
        return thread

    def _drain(self) -> None:
        with self._lock:
            threads = [t for _, t in self._running.values()]
        for thread in threads:
            thread.join()

    # ------------------------------------------------------------------ claiming

    def _claim_available(self) -> None:
        allowed = set(self.types) if self.types else None
        while not self._stopping.is_set():
            with self._lock:
                busy = set(self._running)
            excluded = busy | (set(all_job_types(include_hidden=True)) - allowed if allowed else set())
            if allowed is not None and allowed <= busy:
                return
            try:
                job = self.manager.claim(self.id, exclude_types=excluded)
            except sa.exc.OperationalError as exc:
                log.warning("worker %s: database unavailable while claiming: %s", self.id, exc)
                return
            if job is None:
                return
            self._start(job)

    def _start(self, job: Job) -> None:
        lease = Lease(job.id, self.id, job.attempt)
        thread = threading.Thread(target=self._run_job, args=(job, lease),
                                  name=f"job-{job.type}", daemon=True)
        with self._lock:
            self._running[job.type] = (lease, thread)
        thread.start()

    # ------------------------------------------------------------------ running one job

    def _run_job(self, job: Job, lease: Lease) -> None:
        """Run the job, then keep the thread for the next pending job of the
        same type (no hand-off through the claim loop between queued jobs)."""
        current: Job | None = job
        try:
            while current is not None:
                claimed = self._run_one(current, lease)  # the last commit may have claimed the next
                if claimed is None and not self._stopping.is_set():
                    claimed = self._claim_next_of(job.type)
                current = claimed
                if current is not None:
                    lease = Lease(current.id, self.id, current.attempt)
                    with self._lock:
                        self._running[job.type] = (lease, self._running[job.type][1])
        except sa.exc.OperationalError as exc:
            log.warning("worker %s: database unavailable after a job: %s", self.id, exc)
        finally:
            with self._lock:
                self._running.pop(job.type, None)
            self._wake.set()  # the slot of this type is free again
            self._announce_type_free(job.type)

    def _announce_type_free(self, type_name: str) -> None:
        try:
            self.manager.announce_type_free(type_name)
        except sa.exc.OperationalError as exc:  # other workers' polling covers it
            log.warning("worker %s: could not announce %s free: %s", self.id, type_name, exc)

    def _claim_next_of(self, type_name: str) -> Job | None:
        return self.manager.claim(self.id, only_types=[type_name])

    def _run_one(self, job: Job, lease: Lease) -> Job | None:
        """Run one job; the next job of its type if the last commit claimed it."""
        log.info("job %s type=%s started (attempt %d, resuming at %s)", job.id, job.type,
                 job.attempt, job.checkpoint or "the beginning")
        try:
            return self._run_batches(job, lease)
        except LeaseLost:
            log.warning("job %s type=%s: lease lost; this worker stops touching it", job.id, job.type)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # Database gone: the lease will expire and the job resumes elsewhere.
            log.error("job %s type=%s: database error, abandoning run: %s", job.id, job.type, exc)
            self._record_stop(job, lease, exc)
        finally:
            with self._lock:
                self._lost.discard(job.id)
                self._unpublished_totals.pop(job.id, None)
        return None

    def _run_batches(self, job: Job, lease: Lease) -> Job | None:
        job_type = get_job_type(job.type)
        ctx = self._context(job, lease)
        try:
            if job.total is None:
                # Published by the first commit, or by the next heartbeat if
                # that batch is slow: one round trip less per job.
                job = dataclasses.replace(job, total=job_type.plan(ctx))
                with self._lock:
                    self._unpublished_totals[job.id] = job.total  # type: ignore[assignment]
            checkpoint = job.checkpoint
            rate = job.rate_per_second
            last_commit = time.monotonic()
            while True:
                if self._stopping.is_set() or job.id in self._lost:
                    if job.id not in self._lost:
                        self.manager.release(lease)
                        log.info("job %s type=%s released at a batch boundary", job.id, job.type)
                    return None
                batch = job_type.run_batch(ctx, checkpoint)
                now = time.monotonic()
                rate = _smoothed_rate(rate, batch.processed, now - last_commit)
                claimed = None
                if batch.done and not self._stopping.is_set():
                    job, claimed = self.manager.commit_last_batch(lease, batch, rate=rate, current=job)
                else:
                    job = self.manager.commit_batch(lease, batch, rate=rate, current=job)
                with self._lock:
                    self._unpublished_totals.pop(job.id, None)
                last_commit = now
                ctx.result = job.result
                if job.status is not Status.PROCESSING:
                    self._log_end(job)
                    return claimed
                checkpoint = batch.checkpoint
        except LeaseLost:
            raise
        except JobFailed as exc:
            self._log_end(self.manager.fail(lease, str(exc)))
        except Exception as exc:  # a bug: fail the job, keep the worker alive
            if database_unavailable(exc):
                raise  # not the job's fault: leave it to the lease
            log.error("job %s type=%s crashed:\n%s", job.id, job.type, traceback.format_exc())
            self._log_end(self.manager.fail(
                lease, f"Internal error while processing ({type(exc).__name__}: {exc}). "
                       "Work committed so far is kept; see the worker log."))
        finally:
            ctx.close()
        return None

    def _record_stop(self, job: Job, lease: Lease, exc: BaseException) -> None:
        """Say on the job why this attempt stopped, while it waits for a retry
        (the lease expires; after ``poison_limit`` stopped attempts it fails,
        quoting this). A storage problem names itself ("the database disk is
        full"); anything else is the driver's words."""
        problem = storage_problem(exc, storage_location(self.manager.engine))
        cause = getattr(exc, "orig", None) or exc  # the driver's words, not SQLAlchemy's SQL dump
        reason = problem.job_message if problem else f"database error ({type(cause).__name__}: {cause})."
        # No "will be retried" here: the reaper quotes this when the job fails as poison.
        message = f"Attempt {lease.attempt} stopped: {reason}"
        try:
            self.manager.record_run_error(lease, message)
        except LeaseLost:
            pass  # already reaped or failed: nothing of ours to annotate
        except Exception as record_exc:
            if not database_unavailable(record_exc):
                raise
            log.warning("job %s: could not record why the run stopped (%s)", job.id, record_exc)

    def _context(self, job: Job, lease: Lease) -> RunContext:
        engine = self.manager.engine
        upload_id = job.upload_id

        def _open() -> object:
            if upload_id is None:
                raise JobFailed("This job has no uploaded file.")
            return open_upload(engine, upload_id)

        return RunContext(
            job_id=job.id, params=job.params, settings=self.settings, engine=engine,
            batch_size=_batch_size(self.settings, job.type), upload_id=upload_id, result=dict(job.result),
            open_upload=_open,  # type: ignore[arg-type]
            should_stop=lambda: self._stopping.is_set() or job.id in self._lost,
            report_progress=lambda done: self._report_progress(lease, done),
        )

    def _report_progress(self, lease: Lease, done_in_batch: int) -> None:
        try:
            self.manager.report_progress(lease, done_in_batch)
        except (LeaseLost, sa.exc.OperationalError) as exc:
            log.warning("job %s: progress not recorded: %s", lease.job_id, exc)

    @staticmethod
    def _log_end(job: Job) -> None:
        counts = f"processed={job.processed} succeeded={job.succeeded} failed={job.failed} errors={job.error_count}"
        if job.status is Status.FAILED:
            log.error("job %s type=%s failed: %s (%s)", job.id, job.type, job.error, counts)
        else:
            log.info("job %s type=%s %s (%s)", job.id, job.type, job.status.value, counts)

    # ------------------------------------------------------------------ background loops

    def _heartbeat_loop(self) -> None:
        # Runs until the worker has fully exited: leases must stay alive while
        # a stopping worker finishes its current batches.
        while not self._exited.wait(self.settings.heartbeat_seconds):
            if not self._exited.is_set():  # never re-register after the final deregister
                self._registry_call(worker_registry.heartbeat, self.manager.engine, self.id, self.types)
            with self._lock:
                leases = [lease for lease, _ in self._running.values()]
                totals = dict(self._unpublished_totals)
            if not leases:
                continue
            try:
                lost = self.manager.heartbeat(leases, totals)
            except sa.exc.OperationalError as exc:
                log.warning("worker %s: heartbeat failed: %s", self.id, exc)
                continue
            if lost:
                with self._lock:
                    self._lost |= lost

    def _maintenance_loop(self) -> None:
        last_archive = 0.0
        while not self._stopping.wait(self.settings.reaper_seconds):
            try:
                self.manager.reap_expired()
                self.manager.fail_timed_out()
                self.manager.prune_dead_workers()
                if time.monotonic() - last_archive > 60:
                    self.manager.archive_finished()
                    self.manager.remove_abandoned_uploads()
                    last_archive = time.monotonic()
            except sa.exc.OperationalError as exc:
                log.warning("worker %s: maintenance skipped, database unavailable: %s", self.id, exc)

    def _on_notify(self, type_name: str) -> None:
        """Wake the claim loop unless this worker already runs that type: its
        job thread picks up the next job of its own type by itself."""
        with self._lock:
            busy = type_name in self._running
        if not busy:
            self._wake.set()

    def _listen_loop(self) -> None:
        """LISTEN on PostgreSQL; reconnects after outages, polling covers the gap."""
        import psycopg

        dsn = driver_for(self.manager.engine).listen_dsn(self.manager.engine)
        if dsn is None:
            return
        while not self._stopping.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stopping.is_set():
                        for notify in conn.notifies(timeout=1.0, stop_after=1):
                            self._on_notify(notify.payload)
            except psycopg.Error as exc:
                log.warning("worker %s: LISTEN connection lost (%s); polling meanwhile", self.id, exc)
                self._stopping.wait(1.0)


def database_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` the database going away rather than a bug in the job?

    SQLAlchemy wraps driver errors as ``OperationalError`` (or
    ``InterfaceError`` for a closed connection), but job types that use the
    driver connection directly (the voter import's ``COPY``) raise the
    driver's own exception. Either way the job must not be failed for it:
    the run is abandoned and the job resumes from its checkpoint once the
    lease expires - failing it would turn a database restart into lost jobs.
    """
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return True
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if storage_problem(exc) is not None:
        return True  # locked, full, read-only, unreachable: see cocoa.db.storage
    return connection_lost(exc)


def _batch_size(settings: Settings, type_name: str) -> int:
    """The type's own batch-size setting if it names one (voter imports write
    faster in larger batches), else ``batch_size``."""
    setting = get_job_type(type_name).batch_size_setting
    return int(getattr(settings, setting))


def _smoothed_rate(previous: float | None, items: int, seconds: float) -> float | None:
    if items <= 0 or seconds <= 0:
        return previous
    current = items / seconds
    if previous is None:
        return current
    return RATE_SMOOTHING * current + (1 - RATE_SMOOTHING) * previous


HELPER_EXIT_SECONDS = 5.0


def _join_all(threads: list[threading.Thread], seconds: float) -> None:
    """Give the helper threads a moment to leave their loops (each watches a
    stop event) before the interpreter finalises: a daemon thread still
    inside a C library then - libpq, the fork server starting up - can
    corrupt the heap ("free(): corrupted unsorted chunks", SIGABRT, seen
    when a worker was stopped just after it started)."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
