"""A client generated from the live server's ``/openapi.json`` works (issue 21).

openapi-python-client turns the schema into a package the way a customer
would; the test imports that package and drives a real server with it:
list jobs, upload a voter file, poll it to completion, read its errors,
retry a failed job, geocode, upload parcels naming a ``layer``. Every
response is parsed by the generated models - an undocumented status or a
field the schema does not declare fails here - and every operation and
model name must be short and readable (``list_jobs``, ``JobAccepted``; not
``list_jobs_api_v1_jobs_get`` or ``HealthzHealthzGetResponse...``).
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from api_helpers import create_noop, manager_for, wait_for

from cocoa.samples.sample_set import write_samples

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
USED = ("list_jobs", "import_voters", "get_job", "list_job_errors", "retry_job", "start_geocoding",
        "import_parcels", "healthz")
OPERATION_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
MODEL_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
# What FastAPI's default naming leaves in a name: the path and the method.
GENERATED_NOISE = re.compile(r"ApiV1|api_v1|_api_|(Get|Post|Put|Patch|Delete)Response|Response(Get|Post)")


class Generated:
    """The generated package, imported under a name unique to this run."""

    def __init__(self, root: Path, package: str) -> None:
        self.root = root
        self.package = package
        sys.path.insert(0, str(root))
        self.client_module = importlib.import_module(f"{package}.client")
        self.models = importlib.import_module(f"{package}.models")
        self.types = importlib.import_module(f"{package}.types")

    def op(self, tag: str, name: str) -> ModuleType:
        return importlib.import_module(f"{self.package}.api.{tag}.{name}")

    def operations(self) -> list[str]:
        return sorted(p.stem for p in (self.root / self.package / "api").glob("*/*.py") if p.stem != "__init__")

    def client(self, url: str, token: str) -> Any:
        return self.client_module.AuthenticatedClient(base_url=url, token=token, raise_on_unexpected_status=True,
                                                      timeout=httpx.Timeout(30.0))

    def close(self) -> None:
        sys.path.remove(str(self.root))
        for name in [m for m in sys.modules if m == self.package or m.startswith(f"{self.package}.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def schema(module_server: Any) -> dict[str, Any]:
    response = httpx.get(f"{module_server.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def generated(schema: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    """Generate and import the client from the live server's schema."""
    work = tmp_path_factory.mktemp("generated_client")
    package = f"cocoa_client_{uuid.uuid4().hex[:8]}"
    (work / "openapi.json").write_text(json.dumps(schema))
    (work / "config.yaml").write_text(f"package_name_override: {package}\npost_hooks: []\n")
    run = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(work / "openapi.json"), "--config", str(work / "config.yaml"),
         "--meta", "none", "--output-path", str(work / package)],
        capture_output=True, text=True, timeout=120, cwd=work,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # The generator warns about what it could not turn into code: nothing may be left out.
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    client = Generated(work, package)
    yield client
    client.close()


def test_every_operation_and_model_has_a_short_readable_name(schema: dict[str, Any], generated: Generated) -> None:
    operation_ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    for name in operation_ids:
        assert OPERATION_ID.match(name) and len(name) <= 24 and not GENERATED_NOISE.search(name), name
    assert generated.operations() == sorted(operation_ids)  # one module per operation, named by its id
    assert set(USED) <= set(operation_ids)
    models: list[str] = list(generated.models.__all__)
    assert {"JobOut", "JobAccepted", "JobList", "ErrorBody", "ErrorList", "Health"} <= set(models)
    for name in models:
        assert MODEL_NAME.match(name) and len(name) <= 32 and not GENERATED_NOISE.search(name), name


def test_schema_declares_what_the_server_takes_and_sends(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    parcel_form = paths["/api/v1/gis/parcels/import"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"file", "layer", "format", "source", "source_crs", "mapping"} <= set(parcel_form["schema"]["properties"])
    events = paths["/api/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert list(events) == ["text/event-stream"]
    text = json.dumps(schema)
    assert "noop" not in text and "/work/" not in text and "DESIGN" not in text
    job = schema["components"]["schemas"]["JobOut"]["properties"]
    assert {"elapsed_seconds", "processing_seconds", "duration_seconds", "archived_at"} <= set(job)
    assert job["duration_seconds"].get("deprecated") is True
    for path, method in (("/api/v1/voters/import", "post"), ("/api/v1/gis/parcels/import", "post"),
                         ("/api/v1/jobs/geocoding", "post"), ("/api/v1/jobs/{job_id}/retry", "post")):
        accepted = paths[path][method]["responses"]["202"]["content"]["application/json"]["schema"]
        assert accepted == {"$ref": "#/components/schemas/JobAccepted"}, path


def test_the_schema_declares_every_form_field_the_server_takes(module_server: Any, schema: dict[str, Any]) -> None:
    """The server names the fields it takes when refusing an unknown one;
    the schema must declare exactly those."""
    with module_server.client() as client:
        for path in ("/api/v1/voters/import", "/api/v1/gis/parcels/import"):
            refused = client.post(path, files={"file": ("f.csv", b"a,b\n1,2\n")}, data={"no_such_field": "x"})
            assert refused.status_code == 422 and refused.json()["error"]["code"] == "unknown_field", refused.text
            taken = re.search(r"this endpoint takes (.*)\.$", refused.json()["error"]["message"])
            assert taken, refused.text
            form = schema["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
            assert set(form["properties"]) == set(re.findall(r"'([^']+)'", taken.group(1))), path


def _poll(generated: Generated, client: Any, job_id: str, *statuses: str) -> Any:
    get_job = generated.op("jobs", "get_job")

    def check() -> Any:
        job = get_job.sync(job_id, client=client)
        return job if job.status.value in statuses else None

    return wait_for(check, 60, f"job {job_id} to reach {statuses}")


def test_a_generated_client_drives_the_whole_journey(
    module_server: Any, generated: Generated, tmp_path: Path,
) -> None:
    write_samples(tmp_path)
    client = generated.client(module_server.url, module_server.admin_token)
    models, types = generated.models, generated.types
    assert generated.op("health", "healthz").sync(client=client).status == "ok"

    listed = generated.op("jobs", "list_jobs").sync(client=client, limit=5)
    assert isinstance(listed, models.JobList) and listed.limit == 5

    voters = (tmp_path / "voters.txt").read_bytes()
    body = models.ImportVotersBody(file=types.File(payload=voters, file_name="voters.txt"))
    started = generated.op("imports", "import_voters").sync_detailed(client=client, body=body)
    assert started.status_code == 202 and isinstance(started.parsed, models.JobAccepted)
    assert started.headers["location"] == f"/api/v1/jobs/{started.parsed.job_id}"
    done = _poll(generated, client, started.parsed.job_id, "completed")
    assert done.progress.percent == 100 and done.progress.succeeded > 0
    assert done.elapsed_seconds is not None and 0 <= done.processing_seconds <= done.elapsed_seconds + 0.01
    assert done.duration_seconds == done.elapsed_seconds

    errors = generated.op("jobs", "list_job_errors").sync(started.parsed.job_id, client=client, limit=100)
    assert isinstance(errors, models.ErrorList) and errors.total == done.error_count > 0  # the samples' problems
    assert all(e.severity in ("error", "warning") and e.item.startswith("row ") for e in errors.errors)
    assert errors.total - sum(e.severity == "warning" for e in errors.errors) >= done.progress.failed

    manager = manager_for(module_server, tmp_path)
    failing = create_noop(manager, items=5, fail_at=2)  # no public endpoint makes a job fail on purpose
    manager.engine.dispose()
    assert _poll(generated, client, failing.id, "failed").error
    retried = generated.op("jobs", "retry_job").sync_detailed(failing.id, client=client)
    assert retried.status_code == 202 and isinstance(retried.parsed, models.JobAccepted)
    assert retried.parsed.job.retry_of == failing.id and retried.parsed.status == "pending"

    geocode = models.GeocodeRequest(provider="local")
    geocoding = generated.op("imports", "start_geocoding").sync_detailed(client=client, body=geocode)
    assert geocoding.status_code == 202 and isinstance(geocoding.parsed, models.JobAccepted)
    assert _poll(generated, client, geocoding.parsed.job_id, "completed").progress.total > 0

    gpkg = types.File(payload=(tmp_path / "wake_parcels.gpkg").read_bytes(), file_name="wake_parcels.gpkg")
    parcels = models.ImportParcelsBody(file=gpkg, layer="parcels")
    started = generated.op("imports", "import_parcels").sync_detailed(client=client, body=parcels)
    assert started.status_code == 202 and isinstance(started.parsed, models.JobAccepted), started.content
    assert _poll(generated, client, started.parsed.job_id, "completed").progress.succeeded > 0

    wrong_layer = models.ImportParcelsBody(file=gpkg, layer="no_such_layer")
    refused = generated.op("imports", "import_parcels").sync_detailed(client=client, body=wrong_layer)
    assert refused.status_code == 422 and isinstance(refused.parsed, models.ErrorBody)
    assert "no_such_layer" in refused.parsed.error.message
