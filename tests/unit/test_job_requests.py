"""One request schema per job type: the API, the web start pages and the job
type take their choices from it, and refuse the same mistake with one code."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from starlette.datastructures import FormData

from cocoa.api.errors import ApiError
from cocoa.api.imports import PARCEL_FIELDS, VOTER_FIELDS, _voter_request, field_properties
from cocoa.domain.parcel_files import FORMATS as PARCEL_FORMATS
from cocoa.domain.voter_files import LAYOUTS
from cocoa.jobs import types as job_types
from cocoa.jobs.types import JobTypeDefaults, JobValidationError, get_job_type, register
from cocoa.jobtypes.input_errors import request_input
from cocoa.jobtypes.requests import (
    GEOCODE_HOUSEHOLDS,
    IMPORT_VOTERS,
    PARCEL_IMPORT,
    SCHEMAS,
    RequestError,
    RequestField,
)
from cocoa.providers.factory import PROVIDER_NAMES
from cocoa.web import start


def test_a_bad_mode_is_invalid_mode_422_in_every_layer() -> None:
    with pytest.raises(ApiError) as api:
        _voter_request(FormData([("mode", "half")]))
    with pytest.raises(start.FormError) as web:
        start.voters_request({"mode": "half"})
    with pytest.raises(JobValidationError) as job, request_input():
        IMPORT_VOTERS.field("mode").choose("half")
    assert (api.value.status, api.value.code) == (422, "invalid_mode")
    assert web.value.code == "invalid_mode" and web.value.field == "mode"
    assert (job.value.status, job.value.code) == (422, "invalid_mode")
    assert api.value.message == web.value.message == job.value.message
    assert "full, incremental" in job.value.message and "'half'" in job.value.message


def test_empty_values_take_the_default() -> None:
    assert IMPORT_VOTERS.field("mode").choose("") == "full"
    assert IMPORT_VOTERS.field("mode").choose(None) == "full"
    assert _voter_request(FormData([])) == {"format": "auto", "mode": "full"}
    assert start.voters_request({}) == {"format": "auto", "mode": "full"}


def test_choices_come_from_the_domain_and_the_providers() -> None:
    assert [name for name, _ in start.voter_formats()] == ["auto", *LAYOUTS]
    assert all(description for _, description in start.voter_formats())
    assert start.PROVIDERS == PROVIDER_NAMES
    assert [name for name, _ in start.voter_modes()] == ["full", "incremental"]
    with pytest.raises(start.FormError) as bad_format:
        start.voters_request({"format": "texas_2019"})
    assert bad_format.value.code == "unknown_format"
    with pytest.raises(start.FormError) as bad_provider:
        start.geocode_request({"provider": "google"})
    assert bad_provider.value.code == "unknown_provider"


def test_the_listed_parcel_formats_are_the_readers() -> None:
    description = PARCEL_IMPORT.field("format").description
    assert all(name in description for name in PARCEL_FORMATS)


def test_the_api_takes_its_fields_from_the_schemas() -> None:
    assert IMPORT_VOTERS.names == VOTER_FIELDS
    assert PARCEL_IMPORT.names == PARCEL_FIELDS
    voter_props = field_properties(IMPORT_VOTERS.fields)
    assert voter_props["mode"]["enum"] == ["full", "incremental"]
    assert voter_props["mode"]["default"] == "full"
    assert voter_props["format"]["enum"] == ["auto", *LAYOUTS]


def test_every_schema_names_a_registered_type() -> None:
    for job_type, schema in SCHEMAS.items():
        assert get_job_type(job_type).name == schema.job_type
    assert "provider" in GEOCODE_HOUSEHOLDS.names


def test_a_schema_is_extended_with_one_field() -> None:
    extra = RequestField("note", "Free text.", max_length=10)
    wider = IMPORT_VOTERS.with_fields(extra)
    assert wider.names == (*IMPORT_VOTERS.names, "note")
    replaced = wider.with_fields(RequestField("mode", "Only full.", "choice", "full",
                                              IMPORT_VOTERS.field("mode").choices[:1]))
    assert replaced.names.count("mode") == 1
    with pytest.raises(RequestError):
        replaced.field("mode").choose("incremental")
    with pytest.raises(KeyError):
        IMPORT_VOTERS.field("note")


def test_register_refuses_a_type_missing_a_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_types, "_REGISTRY", dict(job_types._REGISTRY))  # leave no test type behind
    class Incomplete:
        name: ClassVar[str] = "test_incomplete_type"
        needs_upload: ClassVar[bool] = False

        def validate(self, ctx: Any) -> Any: ...
        def plan(self, ctx: Any) -> int: return 0
        def run_batch(self, ctx: Any, checkpoint: Any) -> Any: ...

    with pytest.raises(TypeError, match="hidden, batch_size_setting, uses_helpers"):
        register(Incomplete())  # type: ignore[arg-type]

    class Complete(JobTypeDefaults, Incomplete):
        name: ClassVar[str] = "test_complete_type"

    assert register(Complete()).batch_size_setting == "batch_size"  # type: ignore[arg-type]


def test_the_cli_offers_the_schema_choices() -> None:
    from typer.testing import CliRunner

    from cocoa.cli.import_commands import import_app

    result = CliRunner().invoke(import_app, ["voters", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for name in IMPORT_VOTERS.field("format").values:
        assert name in result.output
    for choice in IMPORT_VOTERS.field("mode").choices:
        assert f"{choice.value}: {choice.description}" in result.output
