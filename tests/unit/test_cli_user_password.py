"""``cocoa user create`` / ``cocoa user password`` without the password in
``ps`` or shell history (issue 14, item 11), the password policy, and
case-insensitive user names. Real ``cocoa`` processes on both backends; the
prompt is driven through a pseudo-terminal, as a person at a terminal types.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import tests.conftest as root  # noqa: E402  (pythonpath includes the repo root)

from cocoa import auth
from cocoa.db.engine import make_engine
from cocoa.db.migrate import upgrade

COCOA = [sys.executable, "-m", "cocoa.cli.main"]


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def cocoa(db_url: str, tmp_path: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """``cocoa …`` with ``stdin`` piped in (so not a terminal)."""
    return subprocess.run([*COCOA, *args], input=stdin, env=root.cocoa_env(db_url, tmp_path, **env),
                          cwd=root.REPO, capture_output=True, text=True, timeout=60)


def at_terminal(db_url: str, tmp_path: Path, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run ``cocoa`` on a pseudo-terminal, typing each answer after the next
    prompt ("...password: ") is complete; returns (exit code, everything shown)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([*COCOA, *args], stdin=terminal, stdout=terminal, stderr=terminal,
                               env=root.cocoa_env(db_url, tmp_path), cwd=root.REPO, start_new_session=True)
    os.close(terminal)
    shown, pending = b"", list(answers)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the process closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            # After the space: click prints "Password:", then getpass turns
            # echo off (discarding anything typed so far) and prints the space.
            if pending and shown.lower().endswith(b"password: "):
                os.write(controller, pending.pop(0).encode() + b"\n")
                shown += b"<typed>"  # so the same prompt is not answered twice
            if not ready and process.poll() is not None:
                break
        return process.wait(timeout=30), shown.decode(errors="replace")
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()


def test_create_asks_twice_without_echo(engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
    code, shown = at_terminal(db_url, tmp_path, ["user", "create", "bob", "--role", "viewer"],
                              ["typed-secret-123", "typed-secret-123"])
    assert code == 0, shown
    assert "Repeat password" in shown and "Created user 'bob' with role viewer." in shown
    assert "typed-secret-123" not in shown  # never echoed
    assert auth.verify_password(engine, "bob", "typed-secret-123") is not None


def test_prompt_refuses_differing_or_short_passwords(engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
    code, shown = at_terminal(db_url, tmp_path, ["user", "create", "bob"], ["typed-secret-123", "typed-secret-124"])
    assert code == 7 and "The two passwords differ; nothing was changed." in shown
    code, shown = at_terminal(db_url, tmp_path, ["user", "create", "bob"], ["short"])
    assert code == 7 and "Password must be at least 12 characters (it has 5)." in shown
    assert auth.get_user(engine, "bob") is None


def test_password_stdin(engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
    run = cocoa(db_url, tmp_path, "user", "create", "carol", "--password-stdin", stdin="from-stdin-secret\n")
    assert run.returncode == 0, run.stderr
    assert auth.verify_password(engine, "carol", "from-stdin-secret") is not None
    empty = cocoa(db_url, tmp_path, "user", "create", "dave", "--password-stdin", stdin="")
    assert empty.returncode == 7 and "No password on standard input" in empty.stderr


def test_no_terminal_and_no_password_option_is_refused_not_echoed(engine: sa.Engine, db_url: str,
                                                                 tmp_path: Path) -> None:
    run = cocoa(db_url, tmp_path, "user", "create", "erin", stdin="would-be-echoed\n")
    assert run.returncode == 7 and "--password-stdin" in run.stderr
    assert auth.get_user(engine, "erin") is None
    token_only = cocoa(db_url, tmp_path, "user", "create", "robot", "--no-password")
    assert token_only.returncode == 0 and "API tokens only" in token_only.stdout


def test_minimum_length_is_a_setting(engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
    short = cocoa(db_url, tmp_path, "user", "create", "frank", "--password-stdin", stdin="fifteen-chars-x\n",
                  COCOA_MIN_PASSWORD_LENGTH="20")
    assert short.returncode == 7 and "at least 20 characters (it has 15)" in short.stderr
    assert cocoa(db_url, tmp_path, "user", "create", "frank", "--password-stdin",
                 stdin="fifteen-chars-x\n").returncode == 0


def test_exist_ok_says_what_it_did(engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
    user = auth.create_user(engine, "admin", "first-password", auth.Role.ADMIN)
    session = auth.create_session(engine, user.id)
    unchanged = cocoa(db_url, tmp_path, "user", "create", "admin", "--exist-ok")
    assert unchanged.returncode == 0 and "User 'admin' exists; its password is unchanged." in unchanged.stdout
    changed = cocoa(db_url, tmp_path, "user", "create", "Admin", "--exist-ok", "--password-stdin",
                    stdin="second-password\n")
    assert changed.returncode == 0, changed.stderr
    assert "User 'admin' exists; its password was changed and 1 web session ended." in changed.stdout
    assert auth.verify_password(engine, "admin", "second-password") is not None
    assert auth.session_owner(engine, session) is None


def test_user_names_are_case_insensitive(engine: sa.Engine, db_url: str, tmp_path: Path) -> None:
    auth.create_user(engine, "Admin", "first-password", auth.Role.ADMIN)
    again = cocoa(db_url, tmp_path, "user", "create", "ADMIN", "--password-stdin", stdin="second-password\n")
    assert again.returncode == 7 and "User 'Admin' already exists" in again.stderr
    with pytest.raises(auth.AuthError, match="case-insensitive"):
        auth.create_user(engine, "ａｄｍｉｎ", "third-password", auth.Role.VIEWER)  # full-width letters
    found = auth.verify_password(engine, "aDmIn", "first-password")
    assert found is not None and found.username == "Admin"  # stored as first spelled
    changed = cocoa(db_url, tmp_path, "user", "password", "admin", "--password-stdin", stdin="fourth-password\n")
    assert changed.returncode == 0 and "Password of 'Admin' changed; 0 web sessions ended." in changed.stdout
