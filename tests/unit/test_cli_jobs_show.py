"""``cocoa jobs show`` and friends (issue 19, item 4): the human summary, id
prefixes against the local database (SQLite and PostgreSQL), the SSE reader
of ``cocoa jobs watch --url``, and the credentials file of ``cocoa login``."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from cocoa.cli import credentials
from cocoa.cli.backends import sse_events
from cocoa.cli.connect import remote_target
from cocoa.cli.main import app
from cocoa.cli.summary import duration_text, progress_text, summary_lines
from cocoa.db.tables import jobs
from cocoa.jobs.manager import JobManager

JOB: dict[str, Any] = {
    "id": "df5c1adb-0000-4000-8000-000000000001", "type": "import_voters", "status": "completed",
    "requested_action": None,
    "progress": {"processed": 1200, "total": 1200, "percent": 100.0, "succeeded": 1190, "failed": 10,
                 "rate_per_second": None, "eta_seconds": None, "phase": None},
    "created_at": "2026-12-05T16:00:00+00:00", "started_at": "2026-12-05T16:00:01+00:00",
    "completed_at": "2026-12-05T16:03:08+00:00", "updated_at": "2026-12-05T16:03:08+00:00",
    "archived_at": None, "elapsed_seconds": 187.0, "processing_seconds": 180.5, "duration_seconds": 187.0,
    "created_by": "alice", "input": {"filename": "ncvoter92.txt", "bytes": 123456, "compressed": False,
                                     "layout": "ncvoter"},
    "params": {"format": "ncvoter"}, "result": {"inserted": 1150, "updated": 40, "layout": "ncvoter"},
    "error": None, "error_count": 12,
    "recent_errors": [{"item": "row 17", "item_index": 17, "severity": "error", "code": "bad_date",
                       "message": "birth date 1999-02-30 is not a date"}],
    "attempt": 0, "retry_of": None,
}


def test_summary_says_what_how_far_when_from_what_and_what_went_wrong() -> None:
    history = [{"at": "2026-12-05T16:00:00+00:00", "event": "created", "actor": "alice", "detail": None},
               {"at": "2026-12-05T16:00:01+00:00", "event": "claimed", "actor": "worker-1", "detail": None}]
    text = "\n".join(summary_lines(JOB, history))
    assert "Job       df5c1adb-0000-4000-8000-000000000001" in text
    assert "Status    completed" in text
    assert "1,200/1,200 (100.0%) · 1,190 ok, 10 failed" in text
    assert "Started   2026-12-05 16:00:01 UTC" in text
    assert "Elapsed   3m 07s (3m 00s processing)" in text
    assert "File      ncvoter92.txt (123,456 bytes, layout ncvoter)" in text
    assert "By        alice" in text
    assert "Result    inserted 1,150, updated 40" in text  # numbers only: not the layout name
    assert "12 item errors (the last 1; all: `cocoa jobs errors df5c1adb`)" in text
    assert "row 17: error bad_date: birth date 1999-02-30 is not a date" in text
    assert "2026-12-05 16:00:01 UTC  claimed by worker-1" in text.splitlines()[-1]


def test_summary_of_a_running_job_without_file_or_history() -> None:
    running = {**JOB, "status": "processing", "requested_action": "cancel", "input": None, "completed_at": None,
               "error_count": 0, "recent_errors": [], "result": {},
               "progress": {**JOB["progress"], "processed": 300, "total": None, "percent": 0.0,
                            "rate_per_second": 150.0, "eta_seconds": None, "phase": "parsing"}}
    lines = summary_lines(running, None)
    text = "\n".join(lines)
    assert "Status    processing (cancel requested" in text
    assert "300/? (0.0%)" in text and "150/s" in text and "parsing" in text
    assert not any(line.startswith(("File", "Finished", "Errors", "History", "Result")) for line in lines)


def test_progress_and_durations() -> None:
    progress = {"processed": 50, "total": 200, "percent": 25.0, "succeeded": 50, "failed": 0,
                "rate_per_second": 10.0, "eta_seconds": 15.0, "phase": None}
    assert progress_text(progress) == "50/200 (25.0%) · 50 ok, 0 failed · 10/s, ETA 15s"
    assert [duration_text(s) for s in (4.24, 187, 7500)] == ["4.2s", "3m 07s", "2h 05m"]


def test_sse_reader_skips_comments_and_joins_data_lines() -> None:
    lines = ["retry: 2000", "", ": keep-alive", "", "event: job", "id: 1", 'data: {"a":', "data: 1}", "",
             "event: end", 'data: {"error": {}}', ""]
    assert list(sse_events(iter(lines))) == [("job", '{"a":\n1}'), ("end", '{"error": {}}')]


# --------------------------------------------------------------------------- credentials


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_credentials_are_private_from_the_start(config_home: Path) -> None:
    path = credentials.save(credentials.Credentials("http://h:1", "cct_secret", "viewer"))
    assert path == config_home / "cocoa" / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.load() == credentials.Credentials("http://h:1", "cct_secret", "viewer")
    path.chmod(0o640)
    with pytest.raises(credentials.CredentialsError, match="readable by other users"):
        credentials.load()
    path.write_text("not json")
    path.chmod(0o600)
    with pytest.raises(credentials.CredentialsError, match="cocoa login"):
        credentials.load()


def test_which_server_a_command_uses(config_home: Path) -> None:
    assert remote_target(None, None) is None  # nothing stored, nothing given: the local database
    assert remote_target("http://a:1/", "t1") == ("http://a:1", "t1")
    credentials.save(credentials.Credentials("http://stored:2", "stored-token"))
    assert remote_target(None, None) == ("http://stored:2", "stored-token")
    assert remote_target("http://stored:2", None) == ("http://stored:2", "stored-token")
    assert remote_target(None, "other") == ("http://stored:2", "other")
    with pytest.raises(typer.Exit) as exited:  # a URL with no token for it
        remote_target("http://elsewhere:3", None)
    assert exited.value.exit_code == 7


# --------------------------------------------------------------------------- prefixes, locally


def _twins(manager: JobManager) -> tuple[str, list[str]]:
    """A job, and two copies of its row whose ids share their first 8 characters."""
    job = manager.create("noop", {"items": 1}, created_by="test")
    shared = uuid.uuid4().hex[:8]
    ids = sorted(shared + str(uuid.uuid4())[8:] for _ in range(2))
    with manager.engine.begin() as conn:
        row = dict(conn.execute(sa.select(jobs).where(jobs.c.id == job.id)).mappings().one())
        for new_id in ids:
            conn.execute(jobs.insert().values({**row, "id": new_id}))
    return job.id, ids


def test_prefixes_against_the_local_database(local_db: JobManager) -> None:
    runner = CliRunner()
    original, (first, second) = _twins(local_db)
    shown = runner.invoke(app, ["jobs", "show", second[:10].upper(), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == second

    ambiguous = runner.invoke(app, ["jobs", "show", first[:8]])
    assert ambiguous.exit_code == 4
    assert first in ambiguous.stderr and second in ambiguous.stderr

    short = runner.invoke(app, ["jobs", "cancel", first[:5]])
    assert short.exit_code == 4 and "at least 6" in short.stderr

    unknown = runner.invoke(app, ["jobs", "errors", "ffffff0000"])
    assert unknown.exit_code == 4 and "ffffff0000" in unknown.stderr

    summary = runner.invoke(app, ["jobs", "show", original[:8]])
    assert summary.exit_code == 0, summary.output
    assert f"Job       {original}" in summary.stdout
    assert "History" in summary.stdout and "created by test" in summary.stdout
