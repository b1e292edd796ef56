"""Long-running processes: the server (``serve``) and the worker."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from cocoa.cli.common import local_manager, setup_logging
from cocoa.config import get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    worker: Annotated[bool | None, typer.Option(
        "--worker/--no-worker", help="Run an embedded worker (default: COCOA_EMBEDDED_WORKER).")] = None,
    processes: Annotated[int | None, typer.Option(
        min=1, max=64, help="Server processes (default: COCOA_WEB_PROCESSES).")] = None,
) -> None:
    """Serve the API and web pages (with an embedded worker unless --no-worker)."""
    import uvicorn

    from cocoa.api.app import create_app, session_secret
    from cocoa.cli import serving

    setup_logging()
    settings = get_settings()
    with local_manager():
        pass  # fail early and clearly on an unreachable or unmigrated database
    run_worker = settings.embedded_worker if worker is None else worker
    count = processes or settings.web_processes
    bind_host, bind_port = host or settings.host, port or settings.port
    # X-Forwarded-For picks the client address the login throttle counts, so
    # it is trusted only from the proxies named in COCOA_FORWARDED_ALLOW_IPS
    # (Uvicorn's own default would trust it from any local connection).
    proxies: dict[str, Any] = {"proxy_headers": bool(settings.forwarded_allow_ips),
                               "forwarded_allow_ips": settings.forwarded_allow_ips}
    if count == 1:  # exits 0 after SIGTERM/SIGINT, like `cocoa worker` (cocoa.cli.serving)
        serving.run(create_app(settings, run_worker=run_worker), host=bind_host, port=bind_port,
                    log_level="info", timeout_graceful_shutdown=5, **proxies)
        return
    # Several processes share the socket; each builds the app from the
    # environment, so pass the choices made here down to them.
    os.environ["COCOA_EMBEDDED_WORKER"] = "true" if run_worker else "false"
    os.environ["COCOA_DATA_DIR"] = str(settings.data_dir.resolve())  # resolved once, for all
    session_secret(settings)  # one secret for all, created before they start
    uvicorn.run("cocoa.api.app:create_app_from_env", factory=True, workers=count, host=bind_host,
                port=bind_port, log_level="info", timeout_graceful_shutdown=5, **proxies)


def worker_command(
    types: Annotated[list[str] | None, typer.Option("--type", help="Only these job types.")] = None,
) -> None:
    """Run a worker until SIGTERM/SIGINT (then finish the current batch and exit 0)."""
    from cocoa.jobs.worker import Worker

    setup_logging()
    with local_manager() as manager:
        worker = Worker(manager, types=types or None)
        worker.install_signal_handlers()
        worker.run()
