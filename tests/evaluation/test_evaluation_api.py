"""Evaluation from the API (a real Celery worker in the PostgreSQL + Redis pass: progress and
cancel in flight) and from the pages (start, progress, cancel, table, plots, compare, escaping)."""

import csv
import io
import json
import time

import pytest

from annotation.models import Membership
from evaluation.models import EvaluationRun
from evaluation.services import CHUNK, start_evaluation_run
from jury.models import Juror
from tests.guards.conftest import Hold

HOSTILE = '<script>alert("x")</script>'


def wait_for(run_id: int, statuses=("succeeded", "failed", "cancelled"), timeout: float = 90.0) -> EvaluationRun:
    deadline = time.monotonic() + timeout
    while True:
        run = EvaluationRun.objects.get(pk=run_id)
        if run.status in statuses or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def endpoint(server, model="guard-1"):
    return {"endpoint": server.url, "model": model, "prompt_format": "nemoguard", "options": {"concurrency": 4}}


@pytest.mark.django_db(transaction=True)
def test_start_progress_cancel_and_reports_through_the_api(client, boss, guard_server, celery_worker):
    client.force_login(boss)
    bad = client.post("/api/evaluation-runs/", {"guards": [endpoint(guard_server)], "benchmarks": ["mmlu"]},
                      content_type="application/json")  # fmt: skip
    assert bad.status_code == 400 and "unknown benchmark 'mmlu'" in bad.json()["detail"]

    held = Hold(free=CHUNK)  # on a real worker: the first chunk is answered, the next one waits
    if celery_worker is not None:
        guard_server.script["holds"] = {"slow-guard": held}
    answer = client.post(
        "/api/evaluation-runs/",
        {"name": "slow", "guards": [endpoint(guard_server, "slow-guard")],
         "benchmarks": ["xstest_prompts", "simple_safety_tests"], "options": {"bootstrap": 0}},
        content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 202, answer.content
    slow = answer.json()["id"]
    if celery_worker is not None:  # a real worker: watch the progress, then cancel in flight
        wait_for(slow, statuses=("running",))
        deadline = time.monotonic() + 90
        while client.get(f"/api/evaluation-runs/{slow}/").json()["done"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        detail = client.get(f"/api/evaluation-runs/{slow}/").json()
        assert detail["status"] == "running" and detail["done"] == CHUNK and detail["total"] == 550
        assert client.post(f"/api/evaluation-runs/{slow}/cancel/").json()["cancel_requested"] is True
        held.release()  # the second chunk is answered; the run stops before the third
        run = wait_for(slow)
        assert run.status == "cancelled" and run.done < run.total
        assert len(guard_server.requests) < 550
    else:  # tasks run in process: the run is done when the request returns
        run = wait_for(slow)
        assert (run.status, run.done, run.total) == ("succeeded", 550, 550)

    quick = client.post(
        "/api/evaluation-runs/",
        {"guards": [endpoint(guard_server)], "benchmarks": ["simple_safety_tests"], "options": {"bootstrap": 100}},
        content_type="application/json",
    ).json()["id"]  # fmt: skip
    run = wait_for(quick)
    assert run.status == "succeeded", run.error
    detail = client.get(f"/api/evaluation-runs/{quick}/").json()
    assert detail["table"]["rows"][0]["f1"] == [1.0] and detail["results"]["cells"][0]["n"] == 100
    assert [run["id"] for run in client.get("/api/evaluation-runs/").json()] == [quick, slow]

    markdown = client.get(f"/api/evaluation-runs/{quick}/report/?as=md")
    assert markdown["Content-Disposition"] == f'attachment; filename="evaluation-{quick}.md"'
    text = markdown.content.decode()
    assert "| model | simple_safety_tests | average |" in text and "| guard-1 | 1.000 | 1.000 |" in text
    table = list(
        csv.DictReader(io.StringIO(client.get(f"/api/evaluation-runs/{quick}/report/?as=csv").content.decode()))
    )
    assert table[0]["simple_safety_tests"] == "1.0000" and table[0]["threshold"] == ""
    report = json.loads(client.get(f"/api/evaluation-runs/{quick}/report/?as=json").content)
    assert report["rows"][0]["cells"][0]["result"]["intervals"]["f1"] == {"low": 1.0, "high": 1.0}
    assert client.get(f"/api/evaluation-runs/{quick}/report/?as=pdf").status_code == 400
    both = client.get(f"/api/evaluation-runs/compare/?runs={quick},{slow}&as=csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(both)))
    assert [row["model"] for row in rows] == [f"guard-1 (run {quick})", f"slow-guard (run {slow})"]
    assert list(rows[0])[2:4] == ["simple_safety_tests", "xstest_prompts"]


@pytest.mark.django_db
def test_who_sees_what(client, boss, project, django_user_model, guard_server):
    annotator = django_user_model.objects.create_user("ann")
    Membership.objects.create(project=project, user=annotator, role="annotator")
    client.force_login(annotator)
    assert client.get("/api/evaluation-runs/").status_code == 403
    assert client.get("/evaluation/").status_code == 403
    staff_run = start_evaluation_run(by=boss, guards=[endpoint(guard_server)], benchmarks=["xstest_prompts"])
    admin = django_user_model.objects.create_user("padmin")
    Membership.objects.create(project=project, user=admin, role="admin")
    juror = Juror.objects.create(project=project, name="j", model="m", base_url=guard_server.url)
    own = start_evaluation_run(by=admin, guards=[{"juror": juror.pk}], benchmarks=["xstest_prompts"])
    assert own.project == project
    client.force_login(admin)
    assert [run["id"] for run in client.get("/api/evaluation-runs/").json()] == [own.pk]
    assert client.get(f"/api/evaluation-runs/{staff_run.pk}/").status_code == 403
    assert client.get(f"/api/evaluation-runs/{staff_run.pk}/report/").status_code == 403
    assert client.post(f"/api/evaluation-runs/{staff_run.pk}/cancel/").status_code == 403
    assert client.get(f"/api/evaluation-runs/compare/?runs={own.pk},{staff_run.pk}").status_code == 403
    client.force_login(boss)
    assert {run["id"] for run in client.get("/api/evaluation-runs/").json()} == {own.pk, staff_run.pk}
    registry = {b["name"]: b for b in client.get("/api/evaluation/benchmarks/").json()}
    assert registry["wildguardtest_refusal"] == {
        "name": "wildguardtest_refusal", "task": "refusal", "positive_class": "refusal", "positive_values": ["refusal"],
        "description": "WildGuardTest (prompt, response, response_refusal_label, …)", "shipped": False,
    }  # fmt: skip


@pytest.fixture
def tasks_here():
    """Runs queued tasks in this process (this test's data is not committed for a worker to see)."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.mark.django_db
def test_evaluation_pages(client, boss, project, guard_server, tasks_here, django_capture_on_commit_callbacks):
    juror = Juror.objects.create(project=project, name=HOSTILE, model="m", base_url=guard_server.url, concurrency=4)
    client.force_login(boss)
    assert f'href="/evaluation/?project={project.pk}">Evaluation</a>' in client.get("/").content.decode()
    page = client.get("/evaluation/").content.decode()
    assert "openai_moderation" in page and "1680 items" in page and "No evaluation runs yet" in page
    assert f'value="juror:{juror.pk}"' in page and HOSTILE not in page and "&lt;script&gt;" in page

    form = {"guard": [f"juror:{juror.pk}"], "benchmark": ["simple_safety_tests", "xstest_prompts"], "limit": "50",
            "bootstrap": "0", "name": "<b>first</b>"}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post("/evaluation/", form)
    run = EvaluationRun.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/evaluation/{run.pk}/"
    assert (run.status, run.done, run.total) == ("succeeded", 100, 100)
    page = client.get(f"/evaluation/{run.pk}/").content.decode()
    assert HOSTILE not in page and "<b>first</b>" not in page and "&lt;b&gt;first&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; (test)" in page
    assert '<td class="n">1.000</td>' in page  # SimpleSafetyTests: all unsafe, and so is every answer
    assert f"/api/evaluation-runs/{run.pk}/report/?as=csv" in page
    assert run.results["plots"] == ["f1.png"]
    plot = client.get(f"/evaluation/{run.pk}/plots/f1.png")
    assert plot.status_code == 200 and plot["Content-Type"] == "image/png"
    assert b"".join(plot.streaming_content)[:4] == b"\x89PNG"
    assert client.get(f"/evaluation/{run.pk}/plots/secret.png").status_code == 404

    error = client.post("/evaluation/", {**form, "limit": "lots"}).content.decode()
    assert "limit: &#x27;lots&#x27; is not a number" in error
    error = client.post("/evaluation/", {"benchmark": ["xstest_prompts"]}).content.decode()
    assert "choose at least one guard" in error

    pending = start_evaluation_run(by=boss, guards=[{"juror": juror.pk}], benchmarks=["xstest_prompts"])
    assert client.post("/evaluation/", {"cancel": pending.pk}).status_code == 302
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    compare = client.get(f"/evaluation/compare/?runs={run.pk}&runs={pending.pk}").content.decode()
    assert f"(test) (run {run.pk})" in compare and f"(run {pending.pk})" in compare
    assert f"/api/evaluation-runs/compare/?runs={run.pk},{pending.pk}&amp;as=md" in compare
    assert client.get("/evaluation/compare/?runs=999").status_code == 404
