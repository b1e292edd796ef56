"""The data folder and the SQLite files are private to the service's account.

They hold voter data and password hashes. What ``cocoa`` creates is 0700
(folders) and 0600 (the database and its ``-wal``/``-shm`` files) whatever
the umask; folders and files that already exist are the operator's and keep
their mode. The commands run as real processes under a permissive umask
(022), the common default that made the files world-readable before.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from cocoa.db.engine import make_engine

REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cocoa(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``cocoa <args>`` with the default database (a SQLite file in the data dir)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCOA_")}
    env["COCOA_DATA_DIR"] = str(data_dir)
    env["XDG_CONFIG_HOME"] = str(data_dir.parent / "config")  # where quickstart records the data dir
    result = subprocess.run([sys.executable, "-m", "cocoa.cli.main", *args], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=240,
                            preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.parametrize("command", [["db", "upgrade"], ["quickstart", "--no-demo"]])
def test_a_fresh_data_dir_and_database_are_private(tmp_path: Path, command: list[str]) -> None:
    data_dir = tmp_path / "srv" / "cocoa" / "var"  # two missing parents: we create them, so ours
    cocoa(data_dir, *command)
    assert mode(data_dir) == 0o700
    assert mode(data_dir.parent) == 0o700
    assert mode(tmp_path / "srv") == 0o700
    assert mode(data_dir / "cocoa.db") == 0o600


def test_wal_and_shm_files_follow_the_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    cocoa(data_dir, "db", "upgrade")
    engine = make_engine(f"sqlite:///{data_dir / 'cocoa.db'}")
    try:
        with engine.begin() as conn:  # a write keeps -wal and -shm while the connection is open
            conn.execute(sa.text("CREATE TABLE wal_probe (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO wal_probe VALUES (1)"))
        with engine.connect():
            for name in ("cocoa.db-wal", "cocoa.db-shm"):
                assert (data_dir / name).exists(), name
                assert mode(data_dir / name) == 0o600, name
    finally:
        engine.dispose()


def test_an_existing_folder_keeps_the_operators_mode(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    data_dir.chmod(0o750)  # e.g. readable by a backup group: the operator's choice
    cocoa(data_dir, "db", "upgrade")
    assert mode(data_dir) == 0o750
    assert mode(data_dir / "cocoa.db") == 0o600  # the file is new: ours


def test_an_existing_database_file_is_left_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    existing = data_dir / "cocoa.db"
    existing.touch()
    existing.chmod(0o640)
    cocoa(data_dir, "db", "upgrade")
    assert mode(existing) == 0o640
    assert existing.stat().st_size > 0  # migrated in place, not replaced


def test_the_session_secret_folder_is_private(tmp_path: Path) -> None:
    from cocoa.api.app import session_secret
    from cocoa.config import Settings

    data_dir = tmp_path / "fresh"
    session_secret(Settings(data_dir=data_dir))
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "session_secret") == 0o600


def test_the_session_secret_is_never_readable_by_others_even_under_a_loose_umask(tmp_path: Path) -> None:
    """Created 0600 in one step (not written, then chmod-ed), and read back as
    the same secret by the next process."""
    import os

    from cocoa.api.app import session_secret
    from cocoa.config import Settings

    settings = Settings(data_dir=tmp_path)
    old = os.umask(0o000)
    try:
        first = session_secret(settings)
    finally:
        os.umask(old)
    assert mode(tmp_path / "session_secret") == 0o600
    assert session_secret(settings) == first and len(first) >= 48
