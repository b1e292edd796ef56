"""The domain's input errors leave a job type as the engine's validation error."""

from __future__ import annotations

import pytest

from cocoa.domain.errors import InputError, Problem
from cocoa.jobs.types import JobValidationError
from cocoa.jobtypes.input_errors import domain_input


@pytest.mark.parametrize(("problem", "status"), [
    (Problem.BAD_REQUEST, 400), (Problem.UNPROCESSABLE, 422),
    (Problem.TOO_LARGE, 413), (Problem.UNSUPPORTED, 415)])
def test_each_problem_keeps_its_status_code_message_and_details(problem: Problem,
                                                                status: int) -> None:
    with pytest.raises(JobValidationError) as info, domain_input():
        raise InputError("Fix the header.", code="bad_header", problem=problem,
                         details={"column": "ncid"})
    error = info.value
    assert (error.status, error.code, error.message, error.details) == (
        status, "bad_header", "Fix the header.", {"column": "ncid"})
    assert isinstance(error.__cause__, InputError)


def test_every_problem_has_a_status() -> None:
    for problem in Problem:
        with pytest.raises(JobValidationError), domain_input():
            raise InputError("x", code="x", problem=problem)


def test_other_errors_pass_through_unchanged() -> None:
    with pytest.raises(KeyError), domain_input():
        raise KeyError("not an input error")
