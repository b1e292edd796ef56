"""One error shape for every 4xx/5xx under the API.

``{"error": {"code": ..., "message": ..., "details": ...}}`` - clients parse
one thing, and a message always says what to fix.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cocoa.api.schemas import ERROR_TEXT, NO_NUL
from cocoa.db.driver import driver_errors
from cocoa.db.storage import storage_location, storage_problem
from cocoa.jobs.manager import JobNotFound
from cocoa.jobs.model import IllegalTransition
from cocoa.jobs.types import JobValidationError
from cocoa.jobs.uploads import UploadTooLarge

log = logging.getLogger("cocoa.api")

_DEFAULT_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "too_many_requests",
    500: "internal_error", 503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _DEFAULT_CODES.get(status, "error")
        self.details = details
        self.headers = headers


def error_response(status: int, message: str, code: str | None = None, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code or _DEFAULT_CODES.get(status, "error"), "message": message,
                      "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.details, exc.headers)

    @app.exception_handler(JobValidationError)
    async def _job_validation(_: Request, exc: JobValidationError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.details)

    @app.exception_handler(JobNotFound)
    async def _not_found(_: Request, exc: JobNotFound) -> JSONResponse:
        return error_response(404, str(exc), "job_not_found")

    @app.exception_handler(IllegalTransition)
    async def _conflict(_: Request, exc: IllegalTransition) -> JSONResponse:
        return error_response(409, str(exc), "illegal_transition")

    @app.exception_handler(UploadTooLarge)
    async def _too_large(_: Request, exc: UploadTooLarge) -> JSONResponse:
        return error_response(413, str(exc), "file_too_large", {"limit_bytes": exc.limit})

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"location": [str(p) for p in e.get("loc", ())], "message": _problem_message(e),
             "type": e.get("type", "")}
            for e in exc.errors()
        ]
        summary = "; ".join(_problem_summary(p) for p in problems[:5])
        if _unreadable_body(problems):  # 400 vs 422: see docs/api.md
            return error_response(400, f"The request body cannot be read: {summary}", "invalid_body", problems)
        return error_response(422, f"Invalid request: {summary}", "validation_error", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else _DEFAULT_CODES.get(exc.status_code, "error")
        if message == _FASTAPI_BODY_ERROR:  # e.g. JSON that is not UTF-8, or nested too deep
            message = ("The request body could not be parsed: send a JSON object encoded as UTF-8 "
                       "with 'Content-Type: application/json'.")
        if exc.status_code == 404 and message == "Not Found":
            message = f"No such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
        # ``code``/``details``: an ApiError that had to travel as an HTTPException (bodies.BodyTooLarge).
        return error_response(exc.status_code, message, getattr(exc, "code", None), getattr(exc, "details", None),
                              headers=getattr(exc, "headers", None))

    # Storage trouble (locked, full, read-only, unreachable) is a 503 with
    # Retry-After on every endpoint and page; other database errors are bugs.
    for database_error in _database_error_classes():
        app.add_exception_handler(database_error, _database_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Also reached by errors raised in middleware (outside the handlers above).
        if storage_problem(exc) is not None:
            return await _database_error(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal server error; the details are in the server log.")


def _database_error_classes() -> list[type[Exception]]:
    """SQLAlchemy's errors and the drivers' own (a job type may use the raw
    driver connection, e.g. COPY on PostgreSQL)."""
    return [sa.exc.SQLAlchemyError, *driver_errors()]


async def _database_error(request: Request, exc: Exception) -> Response:
    """503 + Retry-After naming the storage problem; 500 for anything else."""
    problem = storage_problem(exc, _location(request))
    if problem is None:
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "Internal server error; the details are in the server log.")
    log.warning("%s on %s %s: %s", problem.code, request.method, request.url.path, problem.cause)
    headers = {"Retry-After": str(problem.retry_after), "Cache-Control": "no-store"}
    if _wants_page(request):
        page = _web_error_page(request, problem.message)
        if page is not None:
            page.headers.update(headers)
            return page
    return error_response(503, problem.message, problem.code, problem.details(), headers)


def _location(request: Request) -> str | None:
    manager = getattr(request.app.state, "manager", None)
    return storage_location(manager.engine) if manager is not None else None


def _wants_page(request: Request) -> bool:
    """A browser navigating to a web page (not the API, not a script)."""
    return (not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")
            and request.headers.get("x-requested-with") != "XMLHttpRequest")


def _web_error_page(request: Request, message: str) -> Response | None:
    """The web layer's error page, or None (API-only install, or the page
    itself failed): the JSON error then still says what is wrong."""
    try:
        from cocoa.web.routes import error_page

        return error_page(request, 503, "The database is unavailable", message)
    except Exception:
        log.warning("could not render the web error page", exc_info=True)
        return None


_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def _problem_message(error: Any) -> str:
    """Pydantic's message, reworded where it does not say what to fix."""
    kind, ctx = error.get("type"), error.get("ctx") or {}
    if kind == "json_invalid":  # FastAPI puts the character offset where a field name goes
        loc = error.get("loc", ())
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        return f"the body is not valid JSON ({ctx.get('error', 'decode error')}{where})"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NO_NUL:
        return "must not contain NUL characters"
    return str(error.get("msg", ""))


def _unreadable_body(problems: list[dict[str, Any]]) -> bool:
    """The body is not JSON at all, or there is none: a 400, not a 422 about
    its fields (the rule: 400 when the request cannot be read)."""
    return any(p["type"] == "json_invalid" or (p["type"] == "missing" and p["location"] == ["body"])
               for p in problems)


def _problem_summary(problem: dict[str, Any]) -> str:
    location: list[str] = problem["location"]
    if problem["type"] == "json_invalid":
        return str(problem["message"])
    return f"{'.'.join(location[1:]) or location[0]}: {problem['message']}"


def use_error_shape_in_openapi(app: FastAPI) -> None:
    """Document FastAPI's automatic 422 responses with the error shape they
    really have (the handler above), instead of FastAPI's ``HTTPValidationError``;
    and a 400 on every operation that takes a body (one that cannot be read
    is a 400 wherever it is sent: the rule in docs/api.md)."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        ref = "#/components/schemas/ErrorBody"
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                response = operation.get("responses", {}).get("422")
                content = (response or {}).get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                    response["description"] = ERROR_TEXT[422]
                    content["schema"] = {"$ref": ref}
                _document_unreadable_body(operation, ref)
        components = schema.get("components", {}).get("schemas", {})
        if "ErrorBody" in components:
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_unreadable_body(operation: dict[str, Any], ref: str) -> None:
    responses = operation.setdefault("responses", {})
    if "requestBody" in operation and "400" not in responses:
        responses["400"] = {"description": ERROR_TEXT[400],
                            "content": {"application/json": {"schema": {"$ref": ref}}}}
        # Keep the statuses in order, as FastAPI writes them.
        operation["responses"] = dict(sorted(responses.items(), key=lambda item: str(item[0])))
