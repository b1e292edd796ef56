"""``cocoa import voters --preview / --mapping`` over HTTP (issue 17, item 3):
the real console script with only ``COCOA_URL`` and ``COCOA_TOKEN``, on both
backends."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from api_helpers import wait_status
from tests.unit.cli_helpers import COCOA, Newcomer, newcomer

from cocoa.samples.vendor_export import generate_vendor


def remote(user: Newcomer, server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = user.env(COCOA_URL=server.url, COCOA_TOKEN=server.admin_token)
    return subprocess.run([COCOA, *args], env=env, cwd=user.cwd, capture_output=True, text=True,
                          timeout=120)


def test_preview_and_saved_mapping_over_http(module_server: Any, tmp_path: Path) -> None:
    user = newcomer(tmp_path)
    odd = user.cwd / "odd.csv"
    odd.write_bytes(b"Ref,Given,Family,Residence,Flat,Town,Postcode\n"
                    b"R1,Ann,Lee,5 Elm St,2,Durham,27701\nR2,Bo,Lee,5 Elm St,3,Durham,27701\n")
    vendor = user.cwd / "vendor.csv"
    vendor.write_bytes(generate_vendor(12, seed=2).data)
    with module_server.client() as admin:
        before = admin.get("/api/v1/jobs", params={"limit": 1}).json()["total"]
        shown = remote(user, module_server, "import", "voters", str(vendor), "--preview")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        out = " ".join(shown.stdout.split())
        assert "simple_csv · 12 rows" in out and "Voter ID" in out and "Nothing was imported" in out
        refused = remote(user, module_server, "import", "voters", str(odd), "--preview")
        assert refused.returncode == 6 and "mapping" in refused.stderr and "Traceback" not in refused.stderr
        assert admin.get("/api/v1/jobs", params={"limit": 1}).json()["total"] == before
        name = f"odd-{uuid.uuid4().hex[:6]}"
        mapping = {"voter_id": "Ref", "first_name": "Given", "last_name": "Family",
                   "street": "Residence", "unit": "Flat", "city": "Town", "zip": "Postcode"}
        assert admin.post("/api/v1/voters/mappings", json={"name": name, "mapping": mapping}).status_code == 201
        named = remote(user, module_server, "import", "voters", str(odd), "--preview", "--mapping", name)
        assert named.returncode == 0 and "Residence" in named.stdout, named.stdout + named.stderr
        run = remote(user, module_server, "import", "voters", str(odd), "--mapping", json.dumps(mapping))
        assert run.returncode == 0, run.stdout + run.stderr
        job_id = run.stdout.split("Created job ", 1)[1].split(" ", 1)[0]
        job = wait_status(admin, job_id, "completed", "failed")
        assert job["status"] == "completed" and job["progress"]["succeeded"] == 2, job
