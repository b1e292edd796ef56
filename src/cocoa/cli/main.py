"""``cocoa``: the command line (Typer + Rich).

Commands talk to the database directly through the same JobManager the API
uses, so an operator on any host with the database URL can inspect and
control jobs. Errors print one clear line and exit non-zero.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cocoa import auth
from cocoa.api.job_objects import JobObjects, public_dict
from cocoa.cli import datadir, samples_command
from cocoa.config import Settings, get_settings
from cocoa.db.engine import make_engine
from cocoa.db.migrate import SchemaNotCurrent, check_current, upgrade
from cocoa.jobs.manager import JobManager, JobNotFound, UploadSource
from cocoa.jobs.model import IllegalTransition, Job, Status, utcnow
from cocoa.jobs.types import JobValidationError
from cocoa.jobtypes.builtin import register_builtin_types

app = typer.Typer(help="Cocoa Canvas background jobs.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
jobs_app = typer.Typer(help="Inspect and control jobs.", no_args_is_help=True)
import_app = typer.Typer(help="Start import jobs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(jobs_app, name="jobs")
app.add_typer(import_app, name="import")
app.command("samples")(samples_command.samples)

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@contextmanager
def _manager(check_schema: bool = True) -> Iterator[JobManager]:
    """The jobs engine with the shipped job types: the CLI's composition root."""
    settings = get_settings()
    missing = datadir.missing_database(settings)
    if missing:  # never create one here: only `db upgrade` and `quickstart` do
        fail(missing, 3)
    engine = make_engine(settings.resolved_database_url)
    try:
        if check_schema:
            check_current(engine, settings.resolved_database_url)
        register_builtin_types()
        yield JobManager(engine, settings)
    except SchemaNotCurrent as exc:
        fail(f"{exc} (database: {_safe_url(settings)}, {datadir.origin(settings)})", 3)
    except sa.exc.OperationalError as exc:
        fail(f"Cannot reach the database ({_safe_url(settings)}): {exc.orig or exc}", 2)
    except JobNotFound as exc:
        fail(str(exc), 4)
    except IllegalTransition as exc:
        fail(str(exc), 5)
    except JobValidationError as exc:
        fail(exc.message, 6)
    except auth.AuthError as exc:
        fail(str(exc), 7)
    finally:
        engine.dispose()


def _safe_url(settings: Settings) -> str:
    return sa.make_url(settings.resolved_database_url).render_as_string(hide_password=True)


# ---------------------------------------------------------------------- db / users


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the current version."""
    settings = get_settings()
    try:
        upgrade(settings.resolved_database_url)
    except sa.exc.OperationalError as exc:
        fail(f"Cannot reach the database ({_safe_url(settings)}): {exc.orig or exc}", 2)
    console.print(f"Database at {_safe_url(settings)} is up to date.")


@db_app.command("where")
def db_where() -> None:
    """Show which database commands use and why (setting, quickstart's record or default)."""
    settings = get_settings()
    console.print(datadir.describe(settings, _safe_url(settings)), highlight=False, soft_wrap=True)


PasswordOption = Annotated[str | None, typer.Option(
    help="The password itself. Visible to other users in `ps` and kept in shell history: "
    "prefer the prompt or --password-stdin.")]
PasswordStdinOption = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input.")]


def _read_password(password: str | None, from_stdin: bool, min_length: int) -> str:
    """The new password from --password, --password-stdin or a hidden prompt
    (asked twice), checked against the policy before anything is stored."""
    if password is not None and from_stdin:
        fail("Give --password or --password-stdin, not both.", 7)
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("No password on standard input (expected it on the first line).", 7)
    elif password is None:
        if not sys.stdin.isatty():  # never let a hidden prompt fall back to echoing input
            fail("Standard input is not a terminal, so the password cannot be asked for: pipe it "
                 "in with --password-stdin (or use --no-password for a user of API tokens only).", 7)
        password = str(typer.prompt("Password", hide_input=True, err=True))
        _check_password(password, min_length)
        if str(typer.prompt("Repeat password", hide_input=True, err=True)) != password:
            fail("The two passwords differ; nothing was changed.", 7)
    _check_password(password, min_length)
    return password


def _check_password(password: str, min_length: int) -> None:
    try:
        auth.check_password(password, min_length)
    except auth.AuthError as exc:
        fail(str(exc), 7)


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[auth.Role, typer.Option(help="admin or viewer")] = auth.Role.ADMIN,
    password: PasswordOption = None,
    password_stdin: PasswordStdinOption = False,
    no_password: Annotated[bool, typer.Option(
        "--no-password", help="No password: the user can only use API tokens made for it.")] = False,
    exist_ok: Annotated[bool, typer.Option(
        help="Succeed if the user exists (setting its password if one is given).")] = False,
) -> None:
    """Create a user; asks for the password (hidden, twice) unless given otherwise.

    User names are case-insensitive: 'Admin' and 'admin' are the same user.
    """
    if no_password and (password is not None or password_stdin):
        fail("--no-password cannot be combined with --password or --password-stdin.", 7)
    min_length = get_settings().min_password_length
    with _manager() as manager:
        existing = auth.get_user(manager.engine, username)
        if existing and exist_ok:
            _update_existing(manager, existing, password, password_stdin, min_length)
            return
        if existing:
            fail(f"User {existing.username!r} already exists (user names are case-insensitive); "
                 f"change its password with `cocoa user password {existing.username}`.", 7)
        new_password = None if no_password else _read_password(password, password_stdin, min_length)
        user = auth.create_user(manager.engine, username, new_password, role, min_password_length=min_length)
        console.print(f"Created user {user.username!r} with role {user.role.value}"
                      f"{'' if new_password else ' (no password: API tokens only)'}.", highlight=False)


def _update_existing(manager: JobManager, user: auth.User, password: str | None, from_stdin: bool,
                     min_length: int) -> None:
    """``--exist-ok`` on an existing user: set the password only if one was given."""
    if password is None and not from_stdin:
        console.print(f"User {user.username!r} exists; its password is unchanged.", highlight=False)
        return
    new_password = _read_password(password, from_stdin, min_length)
    ended = auth.set_password(manager.engine, user.username, new_password, min_password_length=min_length)
    console.print(f"User {user.username!r} exists; its password was changed and {_sessions(ended)} "
                  "ended.", highlight=False)


@user_app.command("password")
def user_password(username: str, password_stdin: PasswordStdinOption = False) -> None:
    """Set a user's password (asked hidden, twice); ends the user's web sessions."""
    min_length = get_settings().min_password_length
    with _manager() as manager:
        user = auth.get_user(manager.engine, username)
        if user is None:
            fail(f"No user {username!r}; create it with `cocoa user create {username}`.", 7)
        new_password = _read_password(None, password_stdin, min_length)
        ended = auth.set_password(manager.engine, user.username, new_password, min_password_length=min_length)
    console.print(f"Password of {user.username!r} changed; {_sessions(ended)} ended.", highlight=False)


def _sessions(count: int) -> str:
    return f"{count} web session{'' if count == 1 else 's'}"


@token_app.command("create")
def token_create(
    username: str, name: Annotated[str, typer.Option(help="A label for the token.")] = "cli",
    expires_days: Annotated[int | None, typer.Option(
        "--expires-days", min=1, max=3650, help="Stop working after this many days (default: never).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the token.")] = False,
) -> None:
    """Create an API token for a user; it is shown once."""
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
    with _manager() as manager:
        token, entry = auth.create_token(manager.engine, username, name, expires_at=expires_at)
    if quiet:
        print(token)
    else:
        until = f", expires {entry['expires_at']}" if expires_at else ", never expires"
        console.print(f"Token for {entry['username']!r} (shown once, keep it safe{until}):\n{token}",
                      highlight=False)


@token_app.command("list")
def token_list(username: Annotated[str | None, typer.Option()] = None) -> None:
    """List tokens (never their secret)."""
    with _manager() as manager:
        rows = auth.list_tokens(manager.engine, username)
    table = Table("id", "user", "name", "prefix", "created", "last used", "expires", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), r["username"], r["name"], r["prefix"], r["created_at"] or "",
                      r["last_used_at"] or "", r["expires_at"] or "never", r["revoked_at"] or "")
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    with _manager() as manager:
        if not auth.revoke_token(manager.engine, token_id):
            fail(f"No active token with id {token_id}.", 4)
    console.print(f"Token {token_id} revoked.")


@app.command()
def quickstart(
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Load the demo town once.")] = True,
    reset_password: Annotated[bool, typer.Option(
        "--reset-password", help="Give the existing admin a new random password (shown once); "
        "ends its web sessions.")] = False,
) -> None:
    """First-run set-up: migrate, create the admin (password shown once) and a token.

    The data directory it uses is recorded (see `cocoa db where`), so every
    later command finds this database from any folder.

    Safe to run again: the admin is created once, and so is the token - a run
    that finds a working token from an earlier run says how to get another
    rather than minting one more admin token every time.
    """
    import secrets

    settings = get_settings()
    db_upgrade()
    _remember_data_dir(settings)
    with _manager() as manager:
        password = None
        # 24 characters, or more if the policy asks for more (4 per 3 bytes)
        new_password = secrets.token_urlsafe(max(18, settings.min_password_length))
        admin = auth.get_user(manager.engine, "admin")
        if admin is None:
            password = new_password
            auth.create_user(manager.engine, "admin", password, auth.Role.ADMIN,
                             min_password_length=settings.min_password_length)
        elif reset_password:
            ended = auth.set_password(manager.engine, admin.username, new_password,
                                      min_password_length=settings.min_password_length)
            console.print(f"Password for {admin.username!r} reset; new password: {new_password}  "
                          f"({_sessions(ended)} ended)", highlight=False, soft_wrap=True)
        earlier = auth.active_tokens(manager.engine, "admin", QUICKSTART_TOKEN)
        token = None
        if not earlier:
            token, _ = auth.create_token(manager.engine, "admin", QUICKSTART_TOKEN,
                                         expires_at=utcnow() + timedelta(days=QUICKSTART_TOKEN_DAYS))
        if demo:
            _load_demo_once(manager)
    url = f"http://{settings.host}:{settings.port}"
    console.rule("Cocoa Canvas is ready")
    if password:
        console.print(f"Web login:  {url}/login   user [bold]admin[/]  password [bold]{password}[/]",
                      highlight=False)
    elif reset_password:
        console.print(f"Web login:  {url}/login   user [bold]admin[/]  with the new password above",
                      highlight=False, soft_wrap=True)
    else:
        console.print("Web login:  existing admin user (a new random password: `cocoa quickstart "
                      "--reset-password`; one of your choosing: `cocoa user password admin`)",
                      highlight=False, soft_wrap=True)
    if token is None:
        _print_earlier_token(earlier[-1])
        return
    console.print(f"API token:  {token}   (expires in {QUICKSTART_TOKEN_DAYS} days)",
                  highlight=False, soft_wrap=True)
    console.print(f"Try:        curl -H 'Authorization: Bearer {token}' {url}/api/v1/jobs",
                  highlight=False, soft_wrap=True)


QUICKSTART_TOKEN = "quickstart"
QUICKSTART_TOKEN_DAYS = 30


def _remember_data_dir(settings: Settings) -> None:
    """Record the data directory for later commands; a failure to write the
    record is reported, not fatal (the database itself is fine)."""
    try:
        recorded = datadir.remember(settings)
    except OSError as exc:
        err_console.print(f"warning: could not record the data directory ({exc}); later commands "
                          f"need COCOA_DATA_DIR={settings.data_dir.resolve()}", highlight=False)
        return
    if recorded is not None:
        console.print(f"Data directory {settings.data_dir.resolve()} recorded in {recorded}: "
                      "every cocoa command uses it from any folder.", highlight=False, soft_wrap=True)


def _print_earlier_token(entry: dict[str, Any]) -> None:
    console.print(
        f"API token:  an earlier quickstart made one ({entry['prefix']}…, id {entry['id']}, "
        f"expires {entry['expires_at'] or 'never'}); it was shown only then.\n"
        "            For a new one: `cocoa token create admin --expires-days 30` "
        f"(and `cocoa token revoke {entry['id']}` if the old one is lost).",
        highlight=False, soft_wrap=True)


def _load_demo_once(manager: JobManager) -> None:
    try:
        from cocoa.samples.demo import load_demo
    except ImportError:
        return
    load_demo(manager, console)


# ---------------------------------------------------------------------- processes


@app.command()
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

    _setup_logging()
    settings = get_settings()
    with _manager():
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


@app.command("worker")
def worker_command(
    types: Annotated[list[str] | None, typer.Option("--type", help="Only these job types.")] = None,
) -> None:
    """Run a worker until SIGTERM/SIGINT (then finish the current batch and exit 0)."""
    from cocoa.jobs.worker import Worker

    _setup_logging()
    with _manager() as manager:
        worker = Worker(manager, types=types or None)
        worker.install_signal_handlers()
        worker.run()


# ---------------------------------------------------------------------- jobs


def _job_row(job: Job) -> list[str]:
    p = job.progress()
    total = "?" if p["total"] is None else str(p["total"])
    return [job.id, job.type, job.status.value, f"{p['percent']:.1f}% ({p['processed']}/{total})",
            str(job.error_count), job.created_at.strftime("%Y-%m-%d %H:%M:%S"), job.created_by or ""]


@jobs_app.command("list")
def jobs_list(
    status: Annotated[Status | None, typer.Option(help="Filter by status.")] = None,
    type_name: Annotated[str | None, typer.Option("--type", help="Filter by job type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    all_: Annotated[bool, typer.Option("--all", help="Include archived and internal jobs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List recent jobs, newest first."""
    with _manager() as manager:
        found, total = manager.list_jobs(status=status.value if status else None, type_name=type_name,
                                    limit=limit, include_archived=all_, include_hidden=all_)
    if as_json:
        print(json.dumps({"jobs": [public_dict(j) for j in found], "total": total}, indent=2))
        return
    table = Table("id", "type", "status", "progress", "errors", "created (UTC)", "by",
                  title=f"{len(found)} of {total} jobs")
    for job in found:
        table.add_row(*_job_row(job))
    console.print(table)


@jobs_app.command("show")
def jobs_show(job_id: str) -> None:
    """Show one job as JSON."""
    with _manager() as manager:
        job = manager.get(job_id)
        print(json.dumps(JobObjects(manager).job_dict(job), indent=2))


def _control(action: str) -> Callable[[str], None]:
    def command(job_id: str) -> None:
        with _manager() as manager:
            job = manager.control(job_id, action)
        note = f" ({job.control.value} requested; takes effect after the current batch)" if job.control else ""
        console.print(f"Job {job.id} is {job.status.value}{note}.")

    command.__doc__ = f"{action.capitalize()} a job."
    return command


for _action in ("cancel", "pause", "resume"):
    jobs_app.command(_action)(_control(_action))


@jobs_app.command("retry")
def jobs_retry(job_id: str) -> None:
    """Start a new job with the same input as a failed or cancelled one."""
    with _manager() as manager:
        job = manager.retry(job_id, created_by="cli")
    console.print(f"Created job {job.id} (retry of {job_id}).")


@jobs_app.command("watch")
def jobs_watch(
    job_id: str, interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 0.5,
) -> None:
    """Live progress bar with rate and ETA until the job ends, then its result."""
    with _manager() as manager:
        job = watch(manager, job_id, interval)
    sys.exit(0 if job.status is Status.COMPLETED else 1)


def watch(manager: JobManager, job_id: str, interval: float = 0.5) -> Job:
    job = manager.get(job_id)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.completed:,.0f}/{task.fields[total_text]}"),
               TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[eta]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(job.type, total=None, total_text="?", rate="", eta="")
        while True:
            p = job.progress()
            bar.update(task, completed=p["processed"], total=p["total"],
                       description=f"{job.type} [{job.status.value}{' · ' + p['phase'] if p['phase'] else ''}]",
                       total_text=f"{p['total']:,}" if p["total"] is not None else "?",
                       rate=f"{p['rate_per_second']:,.0f}/s" if p["rate_per_second"] else "",
                       eta=f"ETA {p['eta_seconds']:.0f}s" if p["eta_seconds"] is not None else "")
            if job.is_terminal:
                break
            time.sleep(interval)  # polling interval of a progress display, not synchronisation
            job = manager.get(job_id)
    _print_outcome(job)
    return job


def _print_outcome(job: Job) -> None:
    style = {"completed": "green", "failed": "red"}.get(job.status.value, "yellow")
    console.print(f"[{style}]Job {job.id} {job.status.value}[/]", highlight=False)
    if job.error:
        console.print(f"error: {job.error}", highlight=False)
    console.print_json(json.dumps({"result": job.result, "error_count": job.error_count}))


# ---------------------------------------------------------------------- job creation


def create_and_maybe_watch(type_name: str, request: dict[str, Any], path: Path | None, watch_it: bool) -> None:
    with _manager() as manager:
        if path is not None:
            if not path.is_file():
                fail(f"No such file: {path}", 2)
            with path.open("rb") as stream:
                job = manager.create(type_name, request, created_by="cli",
                                     upload=UploadSource(stream, path.name, None))
        else:
            job = manager.create(type_name, request, created_by="cli")
        console.print(f"Created job {job.id} ({type_name}).", highlight=False)
        if watch_it:
            job = watch(manager, job.id)
            sys.exit(0 if job.status is Status.COMPLETED else 1)


@import_app.command("voters")
def import_voters(
    file: Path,
    format: Annotated[str, typer.Option("--format", help="Layout, or auto.")] = "auto",
    mode: Annotated[str, typer.Option(help="full or incremental.")] = "full",
    watch_it: Annotated[bool, typer.Option("--watch", help="Follow progress until done.")] = False,
) -> None:
    """Import a voter file."""
    create_and_maybe_watch("import_voters", {"format": format, "mode": mode}, file, watch_it)


@import_app.command("parcels")
def import_parcels(
    file: Path,
    source_crs: Annotated[str | None, typer.Option(help="CRS when the file has none, e.g. EPSG:2264.")] = None,
    source: Annotated[str | None, typer.Option(help="Dataset name parcels are keyed under.")] = None,
    mapping: Annotated[str | None, typer.Option(
        help='Field mapping as JSON, e.g. \'{"apn_field": "PIN", "address_field": "SITE_ADDR"}\'.')] = None,
    layer: Annotated[str | None, typer.Option(help="Layer to read from a multi-layer file.")] = None,
    watch_it: Annotated[bool, typer.Option("--watch", help="Follow progress until done.")] = False,
) -> None:
    """Import parcels and link households to them."""
    request: dict[str, Any] = {}
    for key, value in (("source_crs", source_crs), ("source", source), ("layer", layer)):
        if value:
            request[key] = value
    if mapping:
        try:
            request["mapping"] = json.loads(mapping)
        except ValueError as exc:
            fail(f"--mapping must be JSON: {exc}", 6)
    create_and_maybe_watch("parcel_import", request, file, watch_it)


@app.command()
def geocode(
    city: Annotated[str | None, typer.Option()] = None,
    state: Annotated[str | None, typer.Option()] = None,
    zip_code: Annotated[str | None, typer.Option("--zip-code")] = None,
    county: Annotated[str | None, typer.Option()] = None,
    precinct: Annotated[str | None, typer.Option()] = None,
    provider: Annotated[str, typer.Option(help="local, census, nominatim or a chain like local,census")] = "local",
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    all_households: Annotated[bool, typer.Option("--all", help="Also re-geocode matched households.")] = False,
    watch_it: Annotated[bool, typer.Option("--watch", help="Follow progress until done.")] = False,
) -> None:
    """Geocode households."""
    request: dict[str, Any] = {"provider": provider, "only_missing": not all_households}
    for key, value in (("city", city), ("state", state), ("zip_code", zip_code), ("county", county),
                       ("precinct", precinct), ("limit", limit)):
        if value is not None:
            request[key] = value
    create_and_maybe_watch("geocode_households", request, None, watch_it)


if __name__ == "__main__":
    app()
