"""Jury jobs end to end against a real HTTP server: verdicts, final labels, resume, cancel, faults."""

import json

import pytest

from annotation.models import FinalLabel, ReviewItem
from annotation.services import import_samples
from jury.models import Juror, JuryJob, JuryVerdict
from jury.services import JuryError, cancel_jury_job, start_jury_job
from jury.tasks import run_jury_job_task

pytestmark = pytest.mark.django_db

UNSAFE = '{"User Safety": "unsafe", "Response Safety": "unsafe", "Safety Categories": "Violence"}'
SAFE = '{"User Safety": "unsafe", "Response Safety": "safe"}'


@pytest.fixture
def jury(project, server, tmp_path, django_user_model):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    rows = [{"id": f"s{i}", "prompt": f"question {i}", "response": f"answer {i}"} for i in range(5)]
    rows.append({"id": "prompt-only", "prompt": "no response here"})
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    host, port = server.server_address
    for name in ("mixtral", "nemo", "gemma"):
        Juror.objects.create(project=project, name=name, model=name, base_url=f"http://{host}:{port}/v1")
    return boss


def test_jury_labels_responses_and_resumes_without_duplicates(project, server, jury):
    server.script["answers"] = {"mixtral": UNSAFE, "nemo": UNSAFE, "gemma": SAFE}
    job = start_jury_job(project, by=jury)
    assert job.total == 5  # the prompt-only sample has no response to judge
    run_jury_job_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.done, job.decided, job.sent_to_humans) == ("succeeded", 5, 5, 0)
    finals = FinalLabel.objects.filter(sample__project=project)
    assert {(f.response_label, f.response_label_source, tuple(f.categories)) for f in finals} == {
        ("unsafe", "llm_jury", ("S1",))
    }
    assert JuryVerdict.objects.count() == 15 and len(server.requests) == 15
    again = start_jury_job(project, by=jury)
    run_jury_job_task.apply(args=[again.pk])
    again.refresh_from_db()
    assert (again.total, again.done, again.status) == (0, 0, "succeeded")
    assert JuryVerdict.objects.count() == 15 and len(server.requests) == 15


def test_a_juror_that_is_down_leaves_undecided_samples_pending_not_in_review(project, server, jury):
    server.script["answers"] = {"mixtral": UNSAFE, "nemo": SAFE}
    Juror.objects.filter(name="gemma").update(base_url="http://127.0.0.1:9/v1")  # nothing listens there
    job = start_jury_job(project, by=jury)
    run_jury_job_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.done, job.decided, job.sent_to_humans) == ("succeeded", 5, 0, 0)
    assert job.error.startswith("5 samples left undecided and pending") and "could not reach gemma on 5" in job.error
    assert not ReviewItem.objects.exists()  # a tie with a juror unheard is no reason to ask humans
    assert not JuryVerdict.objects.filter(juror__name="gemma").exists()
    # the two that answer agree: the majority stands although gemma is still down
    server.script["answers"] = {"mixtral": UNSAFE, "nemo": UNSAFE}
    again = start_jury_job(project, by=jury)
    assert again.total == 5  # gemma has not been heard: every sample is still pending
    run_jury_job_task.apply(args=[again.pk])
    again.refresh_from_db()
    assert (again.status, again.decided, again.sent_to_humans) == ("succeeded", 5, 0)
    assert not ReviewItem.objects.exists()


def test_a_tie_among_jurors_that_all_answered_goes_to_humans(project, server, jury):
    server.script["answers"] = {"mixtral": UNSAFE, "nemo": SAFE, "gemma": '{"User Safety": "unsafe"}'}
    job = start_jury_job(project, by=jury)
    run_jury_job_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.decided, job.sent_to_humans) == ("succeeded", 0, 5)
    assert ReviewItem.objects.filter(reason__startswith="jury undecided on the response").count() == 5
    from annotation.services import review_queue

    first = review_queue(project, jury)[0]
    assert {v["juror"]: v["label"] for v in first["jury"]} == {"gemma": None, "mixtral": "unsafe", "nemo": "safe"}
    assert first["jury"][0]["error"] == "no rating for this part"


def test_a_jury_job_stops_when_its_servers_are_down(project, server, jury, settings):
    settings.AEGIS_JURY_MAX_UNREACHABLE = 3
    Juror.objects.update(base_url="http://127.0.0.1:9/v1")  # every juror's server is down
    job = start_jury_job(project, by=jury)
    run_jury_job_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at is not None
    assert "could not be reached 3 times in a row" in job.error and "cannot reach http://127.0.0.1:9/v1" in job.error
    assert "5 samples were left pending" in job.error
    assert (job.decided, job.sent_to_humans) == (0, 0)
    assert not ReviewItem.objects.exists() and not JuryVerdict.objects.exists()
    assert start_jury_job(project, by=jury).total == 5  # all still there for a later run


def test_cancel_and_setup_errors(project, server, jury):
    job = start_jury_job(project, by=jury)
    cancel_jury_job(job, by=jury)
    run_jury_job_task.apply(args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.done) == ("cancelled", 0) and not JuryVerdict.objects.exists()
    Juror.objects.update(active=False)
    with pytest.raises(JuryError, match="no active juror"):
        start_jury_job(project, by=jury)
    Juror.objects.filter(name="nemo").update(active=True, backend="vllm")
    failed = JuryJob.objects.create(project=project, part="response", total=1)
    run_jury_job_task.apply(args=[failed.pk])
    failed.refresh_from_db()
    assert failed.status == "failed" and "needs vllm (the gpu extra)" in failed.error


def test_structured_output_and_the_aegis2_preset(project, server, jury, capsys):
    from django.core.management import call_command

    from jury.services import add_aegis2_jury

    server.script["answer"] = SAFE
    job = start_jury_job(project, by=jury)
    run_jury_job_task.apply(args=[job.pk])
    schema = server.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["User Safety"]["enum"] == ["safe", "unsafe"]
    with pytest.raises(JuryError, match="give 3 server URLs"):
        add_aegis2_jury(project, by=jury, base_urls=["http://a/v1"])
    jury.is_superuser = True
    jury.save()
    call_command("add_default_jury", project="test")
    out = capsys.readouterr().out
    assert "mixtral-8x22b: mistralai/Mixtral-8x22B-Instruct-v0.1 served as juror-1 at http://juror-1:8000/v1" in out
    assert Juror.objects.filter(project=project).count() == 6
