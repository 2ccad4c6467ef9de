"""The one place that turns any exception into an RFC 9457 problem response."""

from __future__ import annotations

import logging
import traceback

import orjson
from sanic import HTTPResponse, Request
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler

from service.errors import (
    PROBLEM_CONTENT_TYPE,
    ApiError,
    BadRequest,
    InternalError,
    ServiceUnavailable,
)
from service.http import SECURITY_HEADERS
from service.quota import QuotaUnavailable
from service.store import StoreUnavailable

log = logging.getLogger("dicom_api.errors")


def problem_response(error: ApiError, instance: str | None = None) -> HTTPResponse:
    """Serialise an ApiError as ``application/problem+json`` with its headers and the security
    headers. The response middleware sets those too, but Sanic skips it for a problem answered
    after a handler had already called ``request.respond`` (it runs once per request)."""
    return HTTPResponse(
        orjson.dumps(error.to_problem(instance)),
        status=error.status,
        headers={**SECURITY_HEADERS, **error.headers},
        content_type=PROBLEM_CONTENT_TYPE,
    )


def as_api_error(exception: BaseException) -> ApiError:
    """Map any exception to the ApiError the client sees; unknown ones become a bare 500."""
    if isinstance(exception, ApiError):
        return exception
    if isinstance(exception, StoreUnavailable):
        return ServiceUnavailable("The account database is unreachable; retry shortly.")
    if isinstance(exception, QuotaUnavailable):
        return ServiceUnavailable("The quota service is unreachable; retry shortly.")
    if isinstance(exception, SanicException):
        status = exception.status_code
        error = ApiError(str(exception) or "Request failed.", headers=exception.headers or {})
        error.status = status  # type: ignore[misc]
        error.title = _SANIC_TITLES.get(status, "Error")  # type: ignore[misc]
        return error
    return InternalError("An unexpected error occurred; it has been logged.")


_SANIC_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    416: "Range Not Satisfiable",
    417: "Expectation Failed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemErrorHandler(ErrorHandler):
    """Sanic's error handler replaced: every error gets the same problem-details shape."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        if isinstance(exception, RequestCancelled):
            # The client closed the connection mid-request: not a fault of ours, and nobody
            # is left to read this answer.
            log.info("client closed the connection during %s", request.path)
            return problem_response(BadRequest("The connection closed before the request ended."))
        error = as_api_error(exception)
        if isinstance(error, InternalError):
            # Type and frames only: an exception's message may quote uploaded data.
            frames = "".join(traceback.format_tb(exception.__traceback__))
            log.error("unhandled %s on %s\n%s", type(exception).__name__, request.path, frames)
        return problem_response(error, request.path if request else None)
