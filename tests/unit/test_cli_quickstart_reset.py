"""``cocoa quickstart --reset-password`` says what it did (issue 21, item 3).

A second quickstart leaves the admin's password alone and says how to get a
new one; with ``--reset-password`` it sets a new random one, prints it once
("Password for 'admin' reset; new password: ..."), and the old one stops
working. Real processes with a home of their own.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.cli_helpers import newcomer

from cocoa import auth
from cocoa.db.engine import make_engine

FIRST = re.compile(r"user admin\s+password\s+(\S+)")
RESET = re.compile(r"Password for 'admin' reset; new password: (\S+)")


def test_reset_password_prints_the_new_password_and_the_old_one_stops_working(tmp_path: Path) -> None:
    user = newcomer(tmp_path)
    first = user.run("quickstart", "--no-demo")
    assert first.returncode == 0, first.stderr
    found = FIRST.search(first.stdout)
    assert found, first.stdout
    old_password = found.group(1)

    again = user.run("quickstart", "--no-demo")
    assert again.returncode == 0, again.stderr
    assert "cocoa quickstart --reset-password" in again.stdout and "cocoa user password admin" in again.stdout
    assert RESET.search(again.stdout) is None and FIRST.search(again.stdout) is None  # nothing reset

    reset = user.run("quickstart", "--no-demo", "--reset-password")
    assert reset.returncode == 0, reset.stderr
    match = RESET.search(reset.stdout)
    assert match, reset.stdout
    new_password = match.group(1)
    assert new_password != old_password and "User 'admin' exists" not in reset.stdout

    engine = make_engine(f"sqlite:///{user.data_dir / 'cocoa.db'}")
    try:
        assert auth.verify_password(engine, "admin", new_password) is not None
        assert auth.verify_password(engine, "admin", old_password) is None
    finally:
        engine.dispose()
