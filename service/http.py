"""Request-parsing and response helpers shared by the handlers, and the security headers every
answer carries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from sanic import HTTPResponse, Request, Sanic
from sanic.response import BaseHTTPResponse

from service.answer import Answer
from service.errors import BadRequest, ValidationFailed

# Set on every answer, problems included: browsers must not guess a type other than the one sent.
SECURITY_HEADERS: Mapping[str, str] = {"X-Content-Type-Options": "nosniff"}
# Set on the answers of routes declared with ``ctx_no_store=True``: those carrying tokens or keys.
NO_STORE_HEADERS: Mapping[str, str] = {"Cache-Control": "no-store"}

# Row ids are 64-bit signed integers in both stores (PostgreSQL BIGINT, SQLite INTEGER); a
# larger number must never reach a query, where it is an error rather than "no such row".
DATABASE_ID_MAX = 2**63 - 1

# C0 controls (NUL, tab, newline...), DEL and C1 controls: meaningless in a name, an email, a
# password or a token, and PostgreSQL cannot store NUL in text at all.
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS_MESSAGE = "Remove control characters (such as NUL) from this field."


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> HTTPResponse:
    """An ``application/json`` response serialised with orjson."""
    return HTTPResponse(
        orjson.dumps(body),
        status=status,
        headers=dict(headers) if headers else None,
        content_type="application/json",
    )


LARGE_RESPONSE_BYTES = 1024 * 1024


async def send_answer(
    request: Request, answer: Answer, headers: Mapping[str, str]
) -> HTTPResponse | None:
    """Answer 200 with ``answer`` (JSON): returned as a response when small; when large, its
    headers are written with the exact Content-Length and then the answer piece by piece
    (:meth:`Answer.pieces`), each write waiting for the client to keep up, so that neither a
    whole copy of the answer nor Sanic's join of headers and body is ever made."""
    length = len(answer)
    if length < LARGE_RESPONSE_BYTES:
        return HTTPResponse(
            answer.to_bytes(), headers=dict(headers), content_type="application/json"
        )
    # request.respond runs the response middleware (install_security_headers) before the
    # headers go out with the first piece.
    response = await request.respond(
        headers={**headers, "Content-Length": str(length)}, content_type="application/json"
    )
    for piece in answer.pieces():
        await response.send(piece)
    return None


def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    if not request.body:
        raise BadRequest("Request body must be a JSON object; it is empty.")
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise BadRequest("Request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object.")
    return data


def is_database_id(value: int) -> bool:
    """Whether ``value`` can be a row id: positive and within the stores' 64-bit integers."""
    return 1 <= value <= DATABASE_ID_MAX


def parse_id(text: str) -> int | None:
    """A row id written in ASCII digits (a path parameter), None for anything else: signs,
    other scripts' digits, or a number too large for the database."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(DATABASE_ID_MAX)):
        return None
    value = int(text)
    return value if is_database_id(value) else None


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a C0 or C1 control character or DEL (NUL included)."""
    return _CONTROL_CHARACTERS.search(value) is not None


class Fields:
    """Reads typed fields from a JSON object, collecting every problem before raising once.

    Every string field refuses control characters (C0, DEL, C1: NUL, tab, newline, escape...),
    after stripping when it strips: none of the service's fields is multi-line, a password
    included (any other character, spaces and all of Unicode, is allowed in a password).
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def string(
        self,
        name: str,
        *,
        required: bool = True,
        min_length: int = 0,
        max_length: int = 255,
        strip: bool = True,
    ) -> str:
        """A string field; missing optional fields give ``""``. Surrounding whitespace is
        stripped unless ``strip`` is False."""
        value = self.data.get(name)
        if value is None:
            if required:
                self.error(name, "This field is required.")
            return ""
        if not isinstance(value, str):
            self.error(name, "Must be a string.")
            return ""
        if strip:
            value = value.strip()
        if required and not value:
            self.error(name, "This field may not be blank.")
        elif has_control_characters(value):
            self.error(name, CONTROL_CHARACTERS_MESSAGE)
        elif len(value) < min_length:
            self.error(name, f"Must be at least {min_length} characters long.")
        elif len(value) > max_length:
            self.error(name, f"Must be at most {max_length} characters long.")
        return value

    def check(self) -> None:
        """Raise ValidationFailed if any field had a problem."""
        if self.errors:
            raise ValidationFailed(self.errors)


def add_security_headers(request: Request, response: BaseHTTPResponse) -> None:
    """Response middleware: :data:`SECURITY_HEADERS` on every answer, and
    :data:`NO_STORE_HEADERS` on those of routes declared with ``ctx_no_store=True``."""
    response.headers.update(SECURITY_HEADERS)
    route = request.route
    if route is not None and getattr(route.ctx, "no_store", False):
        response.headers.update(NO_STORE_HEADERS)


def install_security_headers(app: Sanic) -> None:
    """Register :func:`add_security_headers` for every answer of ``app``: handlers' responses,
    problems (404 and 405 included) and answers written with ``request.respond``."""
    app.register_middleware(add_security_headers, "response")
