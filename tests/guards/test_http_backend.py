"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (the smallest honest
stand-in for `vllm serve`, which needs its own environment): answers, retries, faults."""

import socket
import threading

import pytest

from guards.backends.base import BackendError
from guards.backends.openai_compatible import OpenAICompatibleBackend
from guards.formats.nemoguard import parse_nemoguard_output
from tests.guards.conftest import Hold


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
    # The seven answered requests wait for one another at the server: sent one after another, the
    # first would wait there alone and fail (the barrier breaks after 30 s).
    server.script["barrier"] = threading.Barrier(7, timeout=30)
    backend = backend_for(server, concurrency=8, retries=0)
    prompts = [f"p{i}" for i in range(7)] + ["refuse me"]
    results = backend.complete_many(prompts)
    assert [isinstance(r, BackendError) for r in results] == [False] * 7 + [True], results
    assert sorted(r["messages"][0]["content"] for r in server.requests) == sorted(prompts)


@pytest.mark.parametrize("status", [429, 503])
def test_retries_overload_statuses(server, status):
    server.script.update(mode="fail_then_ok", fails=1, status=status)
    completion = backend_for(server, retries=2).complete("prompt")
    assert completion.attempts == 2 and len(server.requests) == 2


@pytest.mark.parametrize(
    "body, error",
    [
        (b'{"choices": []}', "not a chat completion"),
        (b'{"choices": [{"message": {"role": "assistant", "content": null}}]}', "has no text"),
        (b'{"choices": [{"message": {"role": "assist', "not a chat completion"),
        (b'{"error": "no such model"}', "not a chat completion"),
    ],
)
def test_malformed_json_bodies(server, body, error):
    server.script.update(mode="malformed", body=body)
    with pytest.raises(BackendError, match=error):
        backend_for(server).complete("prompt")
    assert len(server.requests) == 1  # a 200 that is not a completion is not retried


@pytest.mark.django_db
@pytest.mark.parametrize("arrives", [True, False])
def test_one_slow_juror_does_not_hold_up_the_job(project, server, tmp_path, django_user_model, monkeypatch, arrives):
    """The job finishes; the slow juror's verdicts arrive late (within its timeout), or it abstains
    with the timeout: its server holds every request until the job is over."""
    from annotation.services import import_samples
    from jury.models import Juror, JuryVerdict
    from jury.services import run_jury_job, start_jury_job

    boss = django_user_model.objects.create_user("boss", is_staff=True)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"prompt": "q{i}", "response": "a{i}"}}\n' for i in range(5)), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    host, port = server.server_address
    for name in ("fast-1", "fast-2", "slow"):
        Juror.objects.create(project=project, name=name, model=name, base_url=f"http://{host}:{port}/v1")
    post_init = OpenAICompatibleBackend.__post_init__

    def impatient(backend: OpenAICompatibleBackend) -> None:
        backend.timeout, backend.retries = (30.0 if arrives else 0.5), 0
        post_init(backend)

    monkeypatch.setattr(OpenAICompatibleBackend, "__post_init__", impatient)
    slow_server = Hold()
    server.script.update(
        answer='{"User Safety": "unsafe", "Response Safety": "unsafe", "Safety Categories": "Violence"}',
        **({"delays": {"slow": 0.3}} if arrives else {"holds": {"slow": slow_server}}),
    )
    try:
        job = run_jury_job(start_jury_job(project, by=boss))
    finally:
        slow_server.release()
    assert (job.status, job.done, job.decided, job.sent_to_humans) == ("succeeded", 5, 5, 0)
    slow = JuryVerdict.objects.filter(juror__name="slow")
    if arrives:
        assert JuryVerdict.objects.count() == 15 and slow.count() == 5
        assert set(slow.values_list("label", "error")) == {("unsafe", "")}
    else:  # a timeout says nothing about the sample: no verdict, the juror is asked again next run
        assert JuryVerdict.objects.count() == 10 and not slow.exists()
        assert job.error.startswith("0 samples left undecided and pending") and "could not reach slow on 5" in job.error
    assert set(JuryVerdict.objects.exclude(juror__name="slow").values_list("label", flat=True)) == {"unsafe"}
