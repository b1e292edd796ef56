"""The domain's input errors, as the engine's validation error.

The domain (:mod:`cocoa.domain`) raises :class:`~cocoa.domain.errors.InputError`
with the kind of problem, and knows nothing about jobs or HTTP; the engine
and the API know :class:`~cocoa.jobs.types.JobValidationError` with a
status. A job type calls the domain inside :func:`domain_input`, which maps
one onto the other, so the statuses clients see stay what they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cocoa.domain.errors import InputError, Problem
from cocoa.jobs.types import JobValidationError
from cocoa.jobtypes.requests import RequestError

STATUS = {
    Problem.BAD_REQUEST: 400,
    Problem.UNPROCESSABLE: 422,
    Problem.TOO_LARGE: 413,
    Problem.UNSUPPORTED: 415,
}


def as_validation_error(error: InputError) -> JobValidationError:
    return JobValidationError(error.message, code=error.code, status=STATUS[error.problem],
                              details=error.details)


@contextmanager
def domain_input() -> Iterator[None]:
    """Run domain calls; an :class:`InputError` leaves as a :class:`JobValidationError`."""
    try:
        yield
    except InputError as exc:
        raise as_validation_error(exc) from exc


@contextmanager
def request_input() -> Iterator[None]:
    """Check request fields against :mod:`cocoa.jobtypes.requests`; a
    :class:`RequestError` leaves as a :class:`JobValidationError` with the
    same code and status the API and the web pages give it."""
    try:
        yield
    except RequestError as exc:
        raise JobValidationError(exc.message, code=exc.code, status=exc.status,
                                 details=exc.details) from exc
