"""Every shell example in README.md and docs/*.md runs and does what it says (issue 21).

Each ```sh block is one test, in document order, run by ``bash -e -o
pipefail`` against one live server on SQLite (Uvicorn on loopback, a
temporary data directory) from a folder holding the files ``cocoa samples``
writes - the folder every example assumes. ``http://127.0.0.1:8000`` in a
block becomes the test server's URL and the placeholder token ``cct_…``
the real one (also in ``$TOKEN``); ``cocoa`` commands find the server's
database through ``COCOA_DATABASE_URL``. ``curl`` is wrapped to fail on an
HTTP error (``--fail-with-body``), so an example answered 4xx fails its
block; blocks whose comments promise something (202 and ``Location``, a
finished job, an event) are checked for it.

A block that cannot run this way is preceded by
``<!-- docs-test: skip (reason) -->``; the reason is required.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_helpers import root

from cocoa.samples.sample_set import write_samples

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"^<!-- docs-test: skip(?: \((?P<reason>[^)]+)\))? -->$")
DOC_URL = "http://127.0.0.1:8000"
PLACEHOLDER_TOKEN = "cct_…"
BLOCK_SECONDS = 180

# What a block's text promises, checked in its output: (a line of the block
# matches, the output must match). curl's --fail-with-body already fails any 4xx/5xx.
PROMISES: tuple[tuple[re.Pattern[str], re.Pattern[str], str], ...] = (
    # -si: the examples show the status line and headers of a job-creating request.
    (re.compile(r"curl -si "), re.compile(r"HTTP/1\.1 202 Accepted\r?$", re.M), "202 Accepted"),
    (re.compile(r"curl -si "), re.compile(r"(?im)^location: /api/v1/jobs/[0-9a-f-]{36}\r?$"), "a Location header"),
    (re.compile(r"--watch|cocoa jobs watch"), re.compile(r"(?i)completed"), "a job that completed"),
    (re.compile(r"/events"), re.compile(r"(?m)^event: job$"), "a Server-Sent Event"),
    (re.compile(r"households\.geojson"), re.compile(r'"FeatureCollection"'), "GeoJSON"),
)


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    code: str
    skip_reason: str | None
    bad_marker: str | None  # a skip marker without its reason

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for match in FENCE.finditer(text):
            before = [line for line in text[:match.start()].splitlines() if line.strip()]
            marker = SKIP.match(before[-1].strip()) if before else None
            reason = marker.group("reason") if marker else None
            bad = before[-1] if before and "docs-test" in before[-1] and not reason else None
            found.append(Block(doc, text[:match.start()].count("\n") + 1, match.group(1), reason, bad))
    return found


BLOCKS = blocks()


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data_dir = tmp_path_factory.mktemp("docs_server")
    server = root.start_live_server(f"sqlite:///{data_dir / 'cocoa.db'}", data_dir)
    try:
        yield server
    finally:
        root.stop_live_server(server)


@pytest.fixture(scope="module")
def workspace(docs_server: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The folder the examples run in (the sample files, ``.venv`` for
    ``source .venv/bin/activate``), and their environment."""
    base = tmp_path_factory.mktemp("docs_examples")
    cwd, wrappers = base / "samples", base / "bin"
    for folder in (cwd, wrappers):
        folder.mkdir()
    write_samples(cwd)
    (cwd / ".venv").symlink_to(REPO / ".venv")
    curl = shutil.which("curl")
    assert curl, "the docs examples need curl"
    (wrappers / "curl").write_text(f'#!/bin/sh\nexec {curl} --fail-with-body --silent --show-error "$@"\n')
    (wrappers / "curl").chmod(0o755)
    env = root.cocoa_env(docs_server.db_url, Path(docs_server.log_path).parent)
    env.update({"TOKEN": docs_server.admin_token, "URL": docs_server.url,
                "PATH": f"{wrappers}:{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "NO_COLOR": "1", "COLUMNS": "120"})
    env.pop("VIRTUAL_ENV", None)
    return cwd, env


def test_skip_markers_give_a_reason() -> None:
    bad = [f"{block.id}: {block.bad_marker}" for block in BLOCKS if block.bad_marker]
    assert bad == [], "write <!-- docs-test: skip (why it cannot run in the docs test) -->"


def test_most_blocks_run() -> None:
    """The skip marker is for what truly cannot run here, not for examples that fail."""
    runnable = [block for block in BLOCKS if block.skip_reason is None]
    assert len(runnable) >= 6, [block.id for block in runnable]


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_shell_example(block: Block, docs_server: Any, workspace: tuple[Path, dict[str, str]],
                       tmp_path: Path) -> None:
    """One block, as a reader following that page would run it: in the
    samples folder, with a home folder of its own (``~/cocoa-samples`` is
    new to every page's reader)."""
    if block.skip_reason is not None:
        pytest.skip(f"docs-test: skip ({block.skip_reason})")
    cwd, env = workspace
    env = {**env, "HOME": str(tmp_path)}
    script = block.code.replace(DOC_URL, docs_server.url).replace(PLACEHOLDER_TOKEN, docs_server.admin_token)
    run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=BLOCK_SECONDS)
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"{block.id} exited {run.returncode}:\n{script}\n--- output ---\n{output[-4000:]}"
    for line_pattern, promised, what in PROMISES:
        if any(line_pattern.search(line) for line in block.code.splitlines()):
            assert promised.search(output), f"{block.id} promises {what}, not in:\n{output[:6000]}"
