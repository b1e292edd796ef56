"""Administrative commands, always run against the local database: schema
(``db``), users, API tokens and the first-run ``quickstart``."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.table import Table

from cocoa import auth
from cocoa.cli import datadir
from cocoa.cli.common import console, err_console, fail, local_manager, safe_url
from cocoa.config import Settings, get_settings
from cocoa.db.migrate import upgrade
from cocoa.jobs.manager import JobManager
from cocoa.jobs.model import utcnow

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the current version."""
    settings = get_settings()
    try:
        upgrade(settings.resolved_database_url)
    except sa.exc.OperationalError as exc:
        fail(f"Cannot reach the database ({safe_url(settings)}): {exc.orig or exc}", 2)
    console.print(f"Database at {safe_url(settings)} is up to date.")


@db_app.command("where")
def db_where() -> None:
    """Show which database commands use and why (setting, quickstart's record or default)."""
    settings = get_settings()
    console.print(datadir.describe(settings, safe_url(settings)), highlight=False, soft_wrap=True)


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
    with local_manager() as manager:
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
    with local_manager() as manager:
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
    with local_manager() as manager:
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
    with local_manager() as manager:
        rows = auth.list_tokens(manager.engine, username)
    table = Table("id", "user", "name", "prefix", "created", "last used", "expires", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), r["username"], r["name"], r["prefix"], r["created_at"] or "",
                      r["last_used_at"] or "", r["expires_at"] or "never", r["revoked_at"] or "")
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    with local_manager() as manager:
        if not auth.revoke_token(manager.engine, token_id):
            fail(f"No active token with id {token_id}.", 4)
    console.print(f"Token {token_id} revoked.")

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
    with local_manager() as manager:
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
