"""What every backend answers: a completion, or the error that stands in for it."""

from dataclasses import dataclass


class BackendError(Exception):
    """A request that failed for good (after retries): the juror abstains on that sample."""


class ServerUnreachable(BackendError):
    """A request that never got an answer from the model (connection refused, timeouts, 5xx/429
    after every retry): says nothing about the sample, only that the server is not serving."""


@dataclass(frozen=True)
class Completion:
    text: str
    seconds: float
    attempts: int
