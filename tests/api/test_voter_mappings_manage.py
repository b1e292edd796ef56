"""Saved voter column mappings can be listed and deleted (issue 17, item 3),
and a zipped file is previewed as the import reads it: over real HTTP and
through the real ``cocoa`` console script (over HTTP and on the database),
on both backends."""

from __future__ import annotations

import io
import json
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
from api_helpers import assert_error
from tests.unit.cli_helpers import COCOA, Newcomer, newcomer

from cocoa.samples.vendor_export import generate_vendor

MAPPINGS = "/api/v1/voters/mappings"
PREVIEW = "/api/v1/voters/import/preview"
MAPPING = {"voter_id": "Ref", "first_name": "Given", "last_name": "Family", "street": "Residence",
           "unit": "Flat", "city": "Town", "zip": "Postcode"}


def zipped(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def saved(client: httpx.Client) -> set[str]:
    return {m["name"] for m in client.get(MAPPINGS).json()["mappings"]}


def test_delete_saved_mapping_by_role(module_server: Any) -> None:
    name = f"vendor {uuid.uuid4().hex[:6]}"  # a space: the name travels URL-quoted
    with module_server.client() as admin, module_server.client(module_server.viewer_token) as viewer, \
            httpx.Client(base_url=module_server.url) as anonymous:
        assert admin.post(MAPPINGS, json={"name": name, "mapping": MAPPING}).status_code == 201
        path = f"{MAPPINGS}/{name.replace(' ', '%20')}"
        assert_error(anonymous.delete(path), 401)
        assert_error(viewer.delete(path), 403, "forbidden")
        assert name in saved(viewer)
        response = admin.delete(path)
        assert response.status_code == 204, response.text
        assert name not in saved(admin)
        missing = assert_error(admin.delete(path), 404, "unknown_mapping")
        assert repr(name) in missing["message"] and "Saved mappings:" in missing["message"]
        # a job refers to it no more
        assert_error(admin.post("/api/v1/voters/import", data={"mapping": name},
                                files={"file": ("v.csv", b"Ref,Given\n", "text/csv")}),
                     422, "unknown_mapping")


def test_preview_reads_a_zip_like_the_import(module_server: Any) -> None:
    vendor = generate_vendor(24, seed=3).data
    with module_server.client() as admin:
        plain = admin.post(PREVIEW, files={"file": ("v.csv", vendor, "text/csv")}).json()
        shown = admin.post(PREVIEW, files={"file": ("county.zip", zipped("v.csv", vendor),
                                                    "application/zip")})
        assert shown.status_code == 200, shown.text
        assert shown.json()["rows"] == 24 and shown.json()["sample"] == plain["sample"]
        several = zipped("a.csv", vendor)  # a second member, then name the one wanted
        with zipfile.ZipFile(buffer := io.BytesIO(several), "a") as archive:
            archive.writestr("README.txt", b"read me")
        assert_error(admin.post(PREVIEW, files={"file": ("s.zip", buffer.getvalue(), "application/zip")}),
                     422, "zip_several_members")
        named = admin.post(PREVIEW, data={"member": "a.csv"},
                           files={"file": ("s.zip", buffer.getvalue(), "application/zip")})
        assert named.status_code == 200 and named.json()["rows"] == 24, named.text


def cocoa(user: Newcomer, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COCOA, *args], env=user.env(**env), cwd=user.cwd, capture_output=True,
                          text=True, timeout=120)


def check_cli_mappings(user: Newcomer, env: dict[str, str], admin: httpx.Client) -> None:
    """save, list, preview with it (a .zip and a .gz), delete, delete again: through ``env``."""
    name = f"odd-{uuid.uuid4().hex[:6]}"
    made = cocoa(user, env, "import", "mappings", "save", name, json.dumps(MAPPING))
    assert made.returncode == 0 and f"Saved mapping '{name}'" in made.stdout, made.stdout + made.stderr
    assert name in saved(admin)
    listed = cocoa(user, env, "import", "mappings", "list")
    assert listed.returncode == 0 and name in listed.stdout and "street ← Residence" in listed.stdout, \
        listed.stdout + listed.stderr
    odd = (b"Ref,Given,Family,Residence,Flat,Town,Postcode\n"
           b"R1,Ann,Lee,5 Elm St,2,Durham,27701\nR2,Bo,Lee,5 Elm St,3,Durham,27701\n")
    (user.cwd / "odd.zip").write_bytes(zipped("odd.csv", odd))
    shown = cocoa(user, env, "import", "voters", "odd.zip", "--preview", "--mapping", name)
    out = " ".join(shown.stdout.split())
    assert shown.returncode == 0 and "simple_csv · 2 rows" in out and "Residence" in out, \
        shown.stdout + shown.stderr
    bad = cocoa(user, env, "import", "mappings", "save", name, "{not json")
    assert bad.returncode == 6 and "JSON" in bad.stderr and "Traceback" not in bad.stderr
    gone = cocoa(user, env, "import", "mappings", "delete", name)
    assert gone.returncode == 0 and f"Deleted mapping '{name}'" in gone.stdout, gone.stdout + gone.stderr
    assert name not in saved(admin)
    again = cocoa(user, env, "import", "mappings", "delete", name)
    assert again.returncode != 0 and name in again.stderr and "Traceback" not in again.stderr


def test_cli_mappings_over_http(module_server: Any, tmp_path: Path) -> None:
    with module_server.client() as admin:
        check_cli_mappings(newcomer(tmp_path), {"COCOA_URL": module_server.url,
                                                "COCOA_TOKEN": module_server.admin_token}, admin)
        (tmp_path / "v").mkdir()
        viewer = cocoa(newcomer(tmp_path / "v"), {"COCOA_URL": module_server.url,
                                                  "COCOA_TOKEN": module_server.viewer_token},
                       "import", "mappings", "delete", "whatever")
        assert viewer.returncode != 0 and "admin" in viewer.stderr, viewer.stderr


def test_cli_mappings_on_the_database(module_server: Any, tmp_path: Path) -> None:
    with module_server.client() as admin:
        check_cli_mappings(newcomer(tmp_path), {"COCOA_DATABASE_URL": module_server.db_url}, admin)
