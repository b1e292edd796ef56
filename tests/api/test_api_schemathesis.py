"""Property-based check of the whole OpenAPI document against the live app.

Schemathesis generates requests for every operation from ``/openapi.json``
(valid and invalid ones) and sends them over real HTTP as the admin, on
SQLite and PostgreSQL. Every response must be non-5xx and match the documented
status codes, content types, headers and schemas. Bounded to 25 examples
per operation so each backend finishes in well under two minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from cocoa import auth
from cocoa.db.engine import make_engine

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance]


@pytest.fixture
def fuzz_token(module_server: Any) -> Iterator[tuple[str, int]]:
    """A dedicated admin token, so a generated DELETE cannot revoke the others' tokens."""
    engine = make_engine(module_server.db_url)
    token, entry = auth.create_token(engine, "admin", "schemathesis")
    engine.dispose()
    yield token, int(entry["id"])


@pytest.fixture
def api_schema(module_server: Any) -> Any:
    return schemathesis.openapi.from_url(f"{module_server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case: Any, module_server: Any, fuzz_token: tuple[str, int],
                                  tmp_path: Path) -> None:
    token, token_id = fuzz_token
    if case.method == "DELETE" and case.path_parameters and \
            str(case.path_parameters.get("token_id")) == str(token_id):
        case.path_parameters["token_id"] = 2**31 - 1  # keep the fuzzer's own token alive
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=30)
