"""Fixtures shared with the jury and evaluation tests: the stand-in OpenAI-compatible servers."""

from tests.evaluation.conftest import guard_server  # noqa: F401
from tests.jury.conftest import server  # noqa: F401
