"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (the smallest honest
stand-in for `vllm serve`, which needs its own environment): answers, retries, faults."""

import socket
import time

import pytest

from jury.backends import BackendError, OpenAICompatibleBackend
from taxonomy.prompts import parse_nemoguard_output


def backend_for(server, **options) -> OpenAICompatibleBackend:
    host, port = server.server_address
    return OpenAICompatibleBackend(f"http://{host}:{port}/v1", "juror-1", backoff=0.01, **options)


def test_answer_and_structured_output(server):
    backend = backend_for(server)
    completion = backend.complete("prompt", json_schema={"type": "object"})
    assert parse_nemoguard_output(completion.text).prompt_label == "unsafe"
    request = server.requests[0]
    assert request["model"] == "juror-1" and request["temperature"] == 0.0
    assert request["response_format"]["type"] == "json_schema" and "structured_outputs" not in request
    backend.complete("prompt", choices=["safe", "unsafe"])
    assert server.requests[1]["structured_outputs"] == {"choice": ["safe", "unsafe"]}
    assert "response_format" not in server.requests[1]


def test_retries_a_failing_server_then_succeeds(server):
    server.script.update(mode="fail_then_ok", fails=2)
    completion = backend_for(server, retries=3).complete("prompt")
    assert completion.attempts == 3 and len(server.requests) == 3


def test_gives_up_after_retries_and_on_client_errors(server):
    server.script.update(mode="fail_then_ok", fails=10)
    with pytest.raises(BackendError, match="HTTP 500"):
        backend_for(server, retries=2).complete("prompt")
    assert len(server.requests) == 3
    server.script.clear()
    server.script["mode"] = "bad_request"
    server.requests.clear()
    with pytest.raises(BackendError, match="HTTP 400"):
        backend_for(server, retries=3).complete("prompt")
    assert len(server.requests) == 1  # a 4xx is not retried


def test_malformed_body_and_timeout(server):
    server.script["mode"] = "malformed"
    with pytest.raises(BackendError, match="not a chat completion"):
        backend_for(server).complete("prompt")
    server.script.update(mode="slow", delay=1.0)
    with pytest.raises(BackendError, match="timed out"):
        backend_for(server, timeout=0.2, retries=1).complete("prompt")


def test_server_down():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAICompatibleBackend(f"http://127.0.0.1:{port}/v1", "juror-2", retries=1, backoff=0.01)
    with pytest.raises(BackendError, match="cannot reach"):
        backend.complete("prompt")


def test_many_prompts_concurrently_keep_order_and_isolate_failures(server):
    server.script.update(mode="slow", delay=0.2)
    backend = backend_for(server, concurrency=8)
    prompts = [f"p{i}" for i in range(7)] + ["refuse me"]
    start = time.perf_counter()
    results = backend.complete_many(prompts)
    assert time.perf_counter() - start < 1.0  # eight 0.2 s requests at once, not one after another
    assert [isinstance(r, BackendError) for r in results] == [False] * 7 + [True]
    assert sorted(r["messages"][0]["content"] for r in server.requests) == sorted(prompts)
