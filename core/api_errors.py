"""The API's exception handler: application errors (core.errors) answered with their 4xx status
and body, a number too large for the database 400, and a backing service that is down 503 with a
message, never a 500."""

from django.db import DataError
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import ApplicationError


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "service_unavailable"


class ApplicationErrorAnswer(exceptions.APIException):
    """An application error as DRF answers it (DRF's handler also rolls the request's transaction back)."""

    def __init__(self, error: ApplicationError):
        super().__init__(error.response_body())
        self.status_code = error.status_code


def out_of_range(exc: Exception) -> bool:
    """A number given to the database that its column or LIMIT cannot hold (the fields' bounds,
    core.db_ranges, catch most before): SQLite's OverflowError, PostgreSQL's SQLSTATE 22003."""
    if isinstance(exc, OverflowError):
        return "SQLite INTEGER" in str(exc)
    return isinstance(exc, DataError) and getattr(exc.__cause__, "sqlstate", None) == "22003"


def exception_handler(exc, context):
    """DRF's handler, plus application errors as their 4xx answer, and Redis (rate limits, caches)
    being unreachable as 503. (The task broker being away never reaches a view: jobs are kept as
    pending rows and sent again by supervision, and final-label feedback is applied in the request.)"""
    if isinstance(exc, ApplicationError):
        exc = ApplicationErrorAnswer(exc)
    elif out_of_range(exc):
        exc = exceptions.ValidationError({"detail": "a number in the request is out of range"})
    elif isinstance(exc, RedisError):
        exc = ServiceUnavailable(f"Redis is unreachable ({type(exc).__name__}); try again shortly.")
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == 503:
        response["Retry-After"] = "30"
    return response
