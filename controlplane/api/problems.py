"""One error body for every failure: RFC 9457 problem details, with the CLI's exit code.

`ControlPlaneError` subclasses carry their HTTP status (ConfigError 422, NotFoundError
404, ConflictError 409, DriverError 502, StepFailedError 500); a ConfigError lists each
problem with file, line and field, exactly as `tenantctl validate` prints them. Every
response carries the request id (`X-Request-ID`, taken from the caller when it sent a
sane one), and so does every problem body and audit entry.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from controlplane.service import ControlPlaneError

__all__ = ["MEDIA_TYPE", "install", "problem", "request_id"]

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
REQUEST_ID = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal error",
    502: "An outside system failed",
    503: "Not ready",
}
# HTTP statuses a framework error (routing, query validation) maps to an exit code.
_EXIT_OF_STATUS = {404: 3, 405: 2, 409: 4, 415: 2, 422: 2}


def request_id(request: Request) -> str:
    """The id of this request (set by the middleware)."""
    return str(getattr(request.state, "request_id", "")) or "-"


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    error: str = "",
    exit_code: int = 1,
    **extra: Any,
) -> JSONResponse:
    """A problem-details response for `request`."""
    slug = (error or _TITLES.get(status, "error")).replace(" ", "")
    body: dict[str, Any] = {
        "type": f"urn:tenantctl:problem:{slug}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "error": error or _TITLES.get(status, "Error"),
        "message": detail,
        "exit_code": exit_code,
        "request_id": request_id(request),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _control_plane(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ControlPlaneError)  # noqa: S101 - registered for this class only
    extra: dict[str, Any] = {}
    problems = getattr(exc, "problems", None)
    if problems is not None:
        extra["errors"] = [
            {"file": loc.file, "line": loc.line, "field": loc.field, "message": message}
            for loc, message in problems
        ]
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    response = problem(
        request,
        exc.http_status,
        exc.message,
        error=type(exc).__name__,
        exit_code=exc.exit_code,
        retryable=exc.retryable,
        **extra,
    )
    response.headers.update(headers)
    return response


def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this class only
    errors = [
        {
            "file": "request",
            "line": None,
            "field": ".".join(str(p) for p in e.get("loc", ())),
            "message": str(e.get("msg", "")),
        }
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(request, 422, detail, error="ConfigError", exit_code=2, errors=errors)


def _invalid(request: Request, field: str, message: str) -> Response:
    """Invalid input, as a ConfigError (422, exit 2) naming the part of the request."""
    errors = [{"file": "request", "line": None, "field": field, "message": message}]
    return problem(
        request, 422, f"{field}: {message}", error="ConfigError", exit_code=2, errors=errors
    )


def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for this class only
    status = exc.status_code
    if status == 400:  # FastAPI could not parse the body (not UTF-8, say): invalid input
        return _invalid(request, "body", f"{exc.detail} (send UTF-8 JSON)")
    response = problem(request, status, str(exc.detail), exit_code=_EXIT_OF_STATUS.get(status, 1))
    response.headers.update(exc.headers or {})
    return response


def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("request %s: unexpected %s", request_id(request), type(exc).__name__, exc_info=exc)
    detail = "unexpected error (a bug in tenantctl); the server log has the details"
    return problem(request, 500, detail, error="ControlPlaneError", exit_code=1)


def _nul_in(request: Request) -> str:
    """Where the request carries a NUL character ("" if nowhere): Postgres text cannot
    hold one, so it is refused as invalid input before any route reads it."""
    if "\x00" in request.url.path:
        return "path"
    if any("\x00" in value for value in request.query_params.values()):
        return "query"
    if any("\x00" in value for value in request.headers.values()):
        return "header"
    return ""


async def _refuse_nul(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    where = _nul_in(request)
    if where:
        return _invalid(request, where, "a NUL character is not allowed")
    return await call_next(request)


async def _with_request_id(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    sent = request.headers.get(REQUEST_ID, "")
    request.state.request_id = sent if _SANE_ID.match(sent) else uuid.uuid4().hex
    response = await call_next(request)
    response.headers[REQUEST_ID] = request.state.request_id
    return response


def install(app: FastAPI) -> None:
    """Register the handlers and the request-id middleware on `app`."""
    app.add_exception_handler(ControlPlaneError, _control_plane)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
    app.middleware("http")(_refuse_nul)
    app.middleware("http")(_with_request_id)  # the outer one: every answer has the id
