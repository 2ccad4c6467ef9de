"""Request-parsing and response helpers shared by the handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sanic import HTTPResponse, Request

from service.answer import Answer
from service.errors import BadRequest, ValidationFailed


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


class Fields:
    """Reads typed fields from a JSON object, collecting every problem before raising once."""

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
        """A string field; missing optional fields give ``""``."""
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
        elif len(value) < min_length:
            self.error(name, f"Must be at least {min_length} characters long.")
        elif len(value) > max_length:
            self.error(name, f"Must be at most {max_length} characters long.")
        return value

    def check(self) -> None:
        """Raise ValidationFailed if any field had a problem."""
        if self.errors:
            raise ValidationFailed(self.errors)
