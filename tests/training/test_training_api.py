"""Training from the API, the pages and the command, with a few MiniLM steps."""

import pytest
from django.core.management import call_command

from tests.conftest import wait_until_finished
from training.models import GuardModel, TrainingBlend, TrainingRun

pytest.importorskip("torch", reason="the ml extra (scripts/test installs it)")

QUICK = {"max_steps": 2, "max_length": 32, "batch_size": 4}


@pytest.mark.django_db(transaction=True)
def test_train_through_the_api(client, boss, small_export, celery_worker):
    client.force_login(boss)
    bad = client.post(f"/api/exports/{small_export.pk}/train/", {"kind": "minilm", "config": {"epoch": 1}},
                      content_type="application/json")  # fmt: skip
    assert bad.status_code == 400 and "unknown training settings: epoch" in bad.json()["detail"]
    assert not TrainingBlend.objects.exists()
    answer = client.post(
        f"/api/exports/{small_export.pk}/train/",
        {"kind": "minilm", "config": QUICK, "blend_options": {"seed": 3}},
        content_type="application/json",
    )
    assert answer.status_code == 202, answer.content
    run = wait_until_finished(TrainingRun, answer.json()["id"], timeout=180)
    assert run.status == "succeeded", run.error
    detail = client.get(f"/api/training-runs/{run.pk}/").json()
    assert (detail["step"], detail["total_steps"], detail["export"]) == (4, 4, small_export.pk)  # 2 steps per task
    assert "prompt_harm" in detail["metrics"] and "response_harm" in detail["metrics"]
    assert [g["name"] for g in client.get("/api/guard-models/").json()] == [f"test-minilm-run{run.pk}"]
    assert client.get(f"/api/projects/{small_export.project_id}/training-runs/").json()[0]["id"] == run.pk


@pytest.mark.django_db(transaction=True)
def test_training_page_and_registry(client, boss, small_export, celery_worker):
    client.force_login(boss)
    page = client.get(f"/projects/{small_export.project_id}/training/").content.decode()
    assert f"Export {small_export.pk}" in page and "No training runs yet" in page
    form = {"export": small_export.pk, "kind": "minilm", "config": '{"max_steps": 2, "max_length": 32}',
            "no_refusals": "on"}  # fmt: skip
    assert client.post(f"/projects/{small_export.project_id}/training/", form).status_code == 302
    run = wait_until_finished(TrainingRun, TrainingRun.objects.get().pk, timeout=180)
    assert run.status == "succeeded" and run.blend.options["no_refusals"] is True
    assert "<td>succeeded</td>" in client.get(f"/projects/{small_export.project_id}/training/").content.decode()
    registry = client.get("/models/").content.decode()
    assert GuardModel.objects.get().name in registry
    error = client.post(f"/projects/{small_export.project_id}/training/", {**form, "config": "{oops"}).content.decode()
    assert "settings: not JSON" in error
    error = client.post(f"/projects/{small_export.project_id}/training/", {**form, "config": "[1]"}).content.decode()
    assert "training settings: expected a JSON object" in error


@pytest.mark.django_db
def test_train_guard_command(boss, small_export, capsys):
    call_command("train_guard", export=small_export.pk, kind="minilm", config='{"max_steps": 1, "max_length": 32}')
    out = capsys.readouterr().out
    assert "training run" in out and "guard test-minilm-run" in out
    with pytest.raises(Exception, match="no export snapshot 999"):
        call_command("train_guard", export=999)
