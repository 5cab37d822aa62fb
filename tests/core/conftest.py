"""Fixtures shared with the jury tests: the stand-in OpenAI-compatible server."""

from tests.jury.conftest import server  # noqa: F401
