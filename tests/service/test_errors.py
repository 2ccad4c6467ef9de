"""Every error class produces the one problem-details shape, and unknown exceptions leak nothing."""

from __future__ import annotations

import orjson
import pytest
from sanic.exceptions import NotFound as SanicNotFound

from service import errors
from service.problems import as_api_error, problem_response
from service.quota import QuotaUnavailable
from service.store import StoreUnavailable

ERROR_CLASSES = [
    cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.ApiError) and cls is not errors.ApiError
]


def build(cls: type[errors.ApiError]) -> errors.ApiError:
    if cls is errors.ValidationFailed:
        return cls({"field": ["is wrong"]})
    return cls("something went wrong")


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_has_the_problem_shape(cls: type[errors.ApiError]) -> None:
    response = problem_response(build(cls), "/some/path")
    assert response.content_type == errors.PROBLEM_CONTENT_TYPE
    body = orjson.loads(response.body)
    assert body["status"] == cls.status == response.status
    assert body["title"] == cls.title and body["type"] == cls.problem_type
    assert body["detail"] and body["instance"] == "/some/path"
    assert 400 <= cls.status <= 599


def test_dependency_outages_become_503_with_retry_after() -> None:
    for exc in (StoreUnavailable("db gone"), QuotaUnavailable("redis gone")):
        error = as_api_error(exc)
        assert error.status == 503 and error.headers["Retry-After"] == "5"
        assert "gone" not in error.detail  # internal messages are not echoed


def test_unknown_exceptions_are_a_bare_500() -> None:
    error = as_api_error(ValueError("Patient^Name 19700101"))
    assert error.status == 500 and "Patient" not in error.detail


def test_sanic_errors_keep_their_status() -> None:
    error = as_api_error(SanicNotFound("Requested URL /x not found"))
    assert error.status == 404 and error.title == "Not Found"
