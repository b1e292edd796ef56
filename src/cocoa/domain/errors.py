"""The domain's own input errors.

The domain (file layouts, parcel reading, addresses) knows nothing about jobs
or HTTP: when a file cannot be used it raises :class:`InputError`, saying what
kind of problem it is. The job types translate these into the engine's
validation error, and the API layer turns that into a status code; that keeps
the engine below the domain rather than the other way round.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Problem(Enum):
    """What kind of input problem it is; the job types map it to a status."""

    # 400 vs 422 (docs/api.md): BAD_REQUEST only when the request itself cannot
    # be read; a readable request with wrong values, fields or columns (a
    # mapping that names no column, a file without the columns needed) is
    # UNPROCESSABLE.
    BAD_REQUEST = "bad_request"  # the request cannot be read
    UNPROCESSABLE = "unprocessable"  # readable but invalid: fields, values, columns, no features, no CRS
    TOO_LARGE = "too_large"  # over a size or item limit
    UNSUPPORTED = "unsupported"  # a format we do not read


class InputError(ValueError):
    """A file or request the domain cannot use, with a message that says what to fix."""

    def __init__(
        self, message: str, *, code: str, problem: Problem = Problem.UNPROCESSABLE,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.problem = problem
        self.details = details
