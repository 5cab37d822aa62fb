"""Fixtures shared with the jury and evaluation tests: the stand-in OpenAI-compatible servers."""

from tests.guards.conftest import guard_server, server  # noqa: F401
