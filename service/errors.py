"""Every error the API can return, as classes with a class-level status, and the one place
that turns them into RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ApiError(Exception):
    """An error with a safe, client-facing message; never carries patient data or internals."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    problem_type: ClassVar[str] = "about:blank"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})
        self.extensions: dict[str, Any] = extensions

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body: type, title, status, detail, instance, then extension members."""
        body: dict[str, Any] = {
            "type": self.problem_type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class BadRequest(ApiError):
    status = 400
    title = "Bad Request"


class ValidationFailed(BadRequest):
    """Input that parsed but broke a rule; ``errors`` maps each field to its messages."""

    problem_type = "/problems/validation-error"
    title = "Invalid request"

    def __init__(self, errors: Mapping[str, list[str]], detail: str | None = None) -> None:
        fields = ", ".join(sorted(errors))
        super().__init__(detail or f"Invalid value for: {fields}.", errors=dict(errors))
        self.errors = dict(errors)


class Unauthorized(ApiError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, *, scheme: str = "Bearer", **extensions: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": scheme}, **extensions)


class Forbidden(ApiError):
    status = 403
    title = "Forbidden"


class NotFound(ApiError):
    status = 404
    title = "Not Found"


class MethodNotAllowed(ApiError):
    status = 405
    title = "Method Not Allowed"


class PayloadTooLarge(ApiError):
    status = 413
    title = "Content Too Large"


class UnsupportedMediaType(ApiError):
    status = 415
    title = "Unsupported Media Type"


class UnprocessableContent(ApiError):
    status = 422
    title = "Unprocessable Content"


class TruncatedFile(UnprocessableContent):
    """A DICOM file that ends inside an element (its header or its value): cut short in transit;
    the detail names the element's tag and the byte where it starts, never a value."""


class QuotaExceeded(ApiError):
    """429 carrying the spec's ``error``, ``quota`` and ``requests_used`` members."""

    status = 429
    title = "Too Many Requests"
    problem_type = "/problems/quota-exceeded"


class ServiceUnavailable(ApiError):
    """A dependency (database, Redis) cannot be reached, or memory for an upload cannot be had;
    the client should retry later."""

    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, **extensions: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extensions)


class InternalError(ApiError):
    status = 500
    title = "Internal Server Error"
