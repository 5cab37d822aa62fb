"""The API's exception handler: application errors (core.errors) answered with their 4xx status
and body, and a backing service that is down answered 503 with a message, never a 500."""

from kombu.exceptions import OperationalError as BrokerUnavailable
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


def exception_handler(exc, context):
    """DRF's handler, plus application errors as their 4xx answer, and Redis (rate limits, caches)
    or the task broker being unreachable as 503."""
    if isinstance(exc, ApplicationError):
        exc = ApplicationErrorAnswer(exc)
    elif isinstance(exc, RedisError):
        exc = ServiceUnavailable(f"Redis is unreachable ({type(exc).__name__}); try again shortly.")
    elif isinstance(exc, BrokerUnavailable):
        exc = ServiceUnavailable("the task queue (Redis) is unreachable; nothing was started, try again shortly.")
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == 503:
        response["Retry-After"] = "30"
    return response
