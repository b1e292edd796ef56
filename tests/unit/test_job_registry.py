"""The job type registry loads safely from several threads at once.

A worker starts one thread per claimed job type at the same moment and each
looks its type up first; the chaos test caught a fresh worker failing with
"Unknown job type 'import_voters'" because one thread saw the registry
marked loaded while another was still importing the modules. A fresh
interpreter is needed: the built-in types register once per process.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

RACE = """
import threading
from cocoa.jobs.types import get_job_type
from cocoa.jobtypes.builtin import register_builtin_types

names = ["import_voters", "parcel_import", "geocode_households", "noop"] * 4
barrier = threading.Barrier(len(names))
failures = []

def look_up(name):
    barrier.wait()
    try:
        register_builtin_types()  # as each composition root does, possibly at once
        get_job_type(name)
    except Exception as exc:
        failures.append(f"{name}: {exc}")

threads = [threading.Thread(target=look_up, args=(n,)) for n in names]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\\n".join(failures) or "ok")
"""


def test_concurrent_first_lookups_all_find_their_type() -> None:
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", RACE], cwd=REPO, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "ok", run.stdout
