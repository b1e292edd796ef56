"""Which backend a job command uses, and ``cocoa login``.

In order: ``--url``/``COCOA_URL`` with ``--token``/``COCOA_TOKEN`` (or the
stored token when the stored URL is the same); else the URL and token stored
by ``cocoa login``; else the local database, as before. A token without a URL
(or a URL without a token) is an error that says what is missing, never a
silent fall-back to the local database.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import typer

from cocoa.cli import credentials
from cocoa.cli.backends import Backend, BackendError, HttpBackend, LocalBackend
from cocoa.cli.common import console, fail, local_manager

UrlOption = Annotated[str | None, typer.Option(
    "--url", envvar="COCOA_URL", show_envvar=True,
    help="A Cocoa server's base URL: use its HTTP API instead of the local database.")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="COCOA_TOKEN", show_envvar=True,
    help="API token for --url (default: the one `cocoa login` stored for that URL).")]


def clean_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, or a clear failure."""
    value = url.strip().rstrip("/")
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        fail(f"The server URL must start with http:// or https:// (got {url!r}), "
             "e.g. http://127.0.0.1:8000.", 2)
    return value


def remote_target(url: str | None, token: str | None) -> tuple[str, str] | None:
    """(url, token) of the server to use, or None for the local database."""
    try:
        stored = credentials.load() if not (url and token) else None
    except credentials.CredentialsError as exc:
        fail(str(exc), 7)
    if url:
        url = clean_url(url)
        if token:
            return url, token
        if stored and clean_url(stored.url) == url:
            return url, stored.token
        fail(f"No API token for {url}: give --token (or COCOA_TOKEN), or run `cocoa login {url}`.", 7)
    if token:
        if stored:
            return clean_url(stored.url), token
        fail("An API token was given (--token or COCOA_TOKEN) but no server: give --url "
             "(or COCOA_URL), or run `cocoa login URL`.", 2)
    if stored:
        return clean_url(stored.url), stored.token
    return None


@contextmanager
def open_backend(url: str | None, token: str | None) -> Iterator[Backend]:
    """The backend for this command; its failures become one line and an exit status."""
    target = remote_target(url, token)
    try:
        if target is None:
            with local_manager() as manager:
                yield LocalBackend(manager)
        else:
            remote = HttpBackend(*target)
            try:
                yield remote
            finally:
                remote.close()
    except BackendError as exc:
        fail(exc.message, exc.code)


# --------------------------------------------------------------------------- login


def login(
    url: Annotated[str, typer.Argument(help="The server's base URL, e.g. https://cocoa.example.org")],
    username: Annotated[str | None, typer.Option(help="Asked for when not given.")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help="Store this existing API token instead of logging in with a password.")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input.")] = False,
    expires_days: Annotated[int | None, typer.Option(
        "--expires-days", min=1, max=3650, help="The new token stops working after this many days.")] = None,
) -> None:
    """Log in to a Cocoa server and store its URL and an API token for later commands.

    The token is obtained with POST /api/v1/auth/tokens and kept, with the
    URL, in ~/.config/cocoa/credentials (mode 0600). `cocoa jobs`, `cocoa
    import` and `cocoa geocode` then use that server; `db`, `user` and `token`
    stay local.
    """
    base = clean_url(url)
    with httpx.Client(base_url=base + "/api/v1", timeout=30.0) as client:
        if token is None:
            name = username or str(typer.prompt("Username", err=True))
            token = _new_token(client, base, name, _password(password_stdin), expires_days)
        me = _whoami(client, base, token)
    path = credentials.save(credentials.Credentials(base, token, str(me.get("username"))))
    console.print(f"Logged in to {base} as {me.get('username')} ({me.get('role')}); URL and token "
                  f"stored in {path} (readable only by you).", highlight=False, soft_wrap=True)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("No password on standard input (expected it on the first line).", 7)
        return password
    if not sys.stdin.isatty():
        fail("Standard input is not a terminal, so the password cannot be asked for: pipe it in "
             "with --password-stdin, or give an existing token with --token.", 7)
    return str(typer.prompt("Password", hide_input=True, err=True))


def _new_token(client: httpx.Client, base: str, username: str, password: str,
               expires_days: int | None) -> str:
    body: dict[str, object] = {"username": username, "password": password,
                               "name": f"cli@{socket.gethostname()}"[:128]}
    if expires_days:
        body["expires_in_days"] = expires_days
    answer = _post_or_fail(client, base, "/auth/tokens", body)
    return str(answer["token"])


def _whoami(client: httpx.Client, base: str, token: str) -> dict[str, object]:
    """Check the token works before storing it (and learn whose it is)."""
    try:
        response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    except httpx.TransportError as exc:
        fail(_unreachable(base, exc), 2)
    return _json_or_fail(response, base)


def _post_or_fail(client: httpx.Client, base: str, path: str, body: dict[str, object]) -> dict[str, object]:
    try:
        response = client.post(path, json=body)
    except httpx.TransportError as exc:
        fail(_unreachable(base, exc), 2)
    return _json_or_fail(response, base)


def _json_or_fail(response: httpx.Response, base: str) -> dict[str, object]:
    from cocoa.cli.backends import http_error

    if response.status_code >= 400:
        error = http_error(response, base)
        if response.status_code == 401:  # at login, a 401 is the password or token itself
            fail(f"Login refused by {base}: {_message(response)}", 7)
        fail(error.message, error.code)
    try:
        data = response.json()
    except ValueError:
        fail(f"{base} did not answer like a Cocoa server (no JSON): is this its base URL?", 2)
    if not isinstance(data, dict):
        fail(f"{base} did not answer like a Cocoa server: is this its base URL?", 2)
    return data


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def _unreachable(base: str, exc: Exception) -> str:
    return f"Cannot reach the Cocoa server at {base} ({exc or type(exc).__name__}): check the URL " \
           "and that the server runs."


def logout() -> None:
    """Forget the stored server URL and token (the token itself stays valid until revoked)."""
    path = credentials.credentials_file()
    if not path.exists():
        console.print("Not logged in: no stored credentials.", highlight=False)
        return
    os.unlink(path)
    console.print(f"Removed {path}. Revoke the token on the server if it may have leaked.", highlight=False)
