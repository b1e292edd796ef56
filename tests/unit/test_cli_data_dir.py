"""The CLI finds one database from any folder (issue 21, item 1).

Order: ``COCOA_DATA_DIR`` / ``COCOA_DATABASE_URL``, else the data directory
``cocoa quickstart`` recorded in ``~/.config/cocoa/config``, else
``$XDG_DATA_HOME/cocoa``. Only ``db upgrade`` and ``quickstart`` create a
database; every other command that finds none names the file it looked for
and the command that makes it. Real ``cocoa`` processes, each with a home of
its own and a working directory outside the checkout.
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.cli_helpers import files_under, newcomer


def test_a_read_or_an_import_without_a_database_creates_nothing_and_says_where_it_looked(
        tmp_path: Path) -> None:
    user = newcomer(tmp_path)
    voters = tmp_path / "voters.txt"
    voters.write_text("first_name,last_name,address\nAda,Lovelace,1 Main St\n")
    for args in (["jobs", "list"], ["import", "voters", str(voters)], ["token", "list"],
                 ["worker"], ["serve"]):
        run = user.run(*args)
        assert run.returncode == 3, (args, run.stdout, run.stderr)
        message = " ".join(run.stderr.split())
        assert f"No database at {user.data_dir / 'cocoa.db'}" in message, message
        assert "the per-user default" in message and "`cocoa quickstart`" in message
        assert "`cocoa db upgrade`" in message
    assert files_under(user.home) == [] and files_under(user.cwd) == []  # no empty database, no ./var


def test_quickstart_records_its_data_directory_and_every_folder_then_uses_it(tmp_path: Path) -> None:
    user = newcomer(tmp_path)
    chosen = tmp_path / "srv" / "cocoa"
    made = user.run("quickstart", "--no-demo", COCOA_DATA_DIR=str(chosen))
    assert made.returncode == 0, made.stderr
    assert f"Data directory {chosen} recorded in {user.config_file}" in made.stdout
    assert (chosen / "cocoa.db").is_file()
    assert str(chosen) in user.config_file.read_text()

    elsewhere = tmp_path / "another" / "folder"
    elsewhere.mkdir(parents=True)
    where = user.run("db", "where", cwd=elsewhere)
    assert where.returncode == 0, where.stderr
    assert f"sqlite:///{chosen / 'cocoa.db'}" in where.stdout
    assert f"recorded by `cocoa quickstart` in {user.config_file}" in where.stdout
    assert "Exists:    yes" in where.stdout
    tokens = user.run("token", "list", cwd=elsewhere)  # the quickstart's token is in that database
    assert tokens.returncode == 0, tokens.stderr
    assert "quickstart" in tokens.stdout and "admin" in tokens.stdout
    assert files_under(elsewhere) == [] and not (user.data_dir / "cocoa.db").exists()


def test_without_settings_or_a_record_the_data_lives_in_xdg_data_home(tmp_path: Path) -> None:
    user = newcomer(tmp_path)
    data_home = tmp_path / "data-home"
    made = user.run("quickstart", "--no-demo", XDG_DATA_HOME=str(data_home))
    assert made.returncode == 0, made.stderr
    assert (data_home / "cocoa" / "cocoa.db").is_file()
    assert files_under(user.cwd) == []
    # recorded, so it is found again even when XDG_DATA_HOME is no longer set
    listed = user.run("jobs", "list")
    assert listed.returncode == 0, listed.stderr
    assert "0 of 0 jobs" in listed.stdout


def test_a_setting_wins_over_the_record_and_the_message_says_so(tmp_path: Path) -> None:
    user = newcomer(tmp_path)
    assert user.run("quickstart", "--no-demo").returncode == 0
    other = tmp_path / "other"
    run = user.run("jobs", "list", COCOA_DATA_DIR=str(other))
    assert run.returncode == 3
    message = " ".join(run.stderr.split())
    assert f"No database at {other / 'cocoa.db'}" in message and "set by COCOA_DATA_DIR" in message
    assert not other.exists()
    url = f"sqlite:///{tmp_path / 'explicit.db'}"
    run = user.run("jobs", "list", COCOA_DATABASE_URL=url)
    assert run.returncode == 3 and "set by COCOA_DATABASE_URL" in " ".join(run.stderr.split())
    assert not (tmp_path / "explicit.db").exists()


def test_db_upgrade_creates_the_database_where_the_resolution_points(tmp_path: Path) -> None:
    user = newcomer(tmp_path)
    run = user.run("db", "upgrade")
    assert run.returncode == 0, run.stderr
    assert (user.data_dir / "cocoa.db").is_file()
    assert not user.config_file.exists()  # only quickstart records
    assert user.run("jobs", "list").returncode == 0
