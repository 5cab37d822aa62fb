"""Job pages (training, evaluation, a run, jury) stay live without reloading: while a job is pending
or running, the parts marked data-live ask live.js for another look, also while no worker runs (so
the notice goes once one starts); the forms are never reloaded under the person typing."""

import pytest

from annotation.models import ExportSnapshot
from evaluation.models import EvaluationRun
from jury.models import JuryJob
from training.models import TrainingBlend, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedded_without_worker(settings, tmp_path):
    settings.AEGIS_EMBEDDED_BROKER = True
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.AEGIS_WORKER_BEAT_DIR = tmp_path / "workers"  # no presence file: no worker
    return settings


def pending_jobs(project) -> dict[str, str]:
    """One pending job of each kind; the page of each, by name."""
    export = ExportSnapshot.objects.create(project=project, formats=["jsonl"], status="succeeded")
    blend = TrainingBlend.objects.create(project=project, export=export)
    TrainingRun.objects.create(blend=blend, kind="minilm", base_model="minilm")
    run = EvaluationRun.objects.create(project=project, guards=[], benchmarks=[])
    JuryJob.objects.create(project=project, part="response")
    return {
        "training": f"/projects/{project.pk}/training/",
        "evaluation": "/evaluation/",
        "run": f"/evaluation/{run.pk}/",
        "jury": f"/projects/{project.pk}/jury/",
    }


@pytest.mark.parametrize("page", ["training", "evaluation", "run", "jury"])
def test_a_pending_job_keeps_the_page_live_and_names_the_missing_worker(
    embedded_without_worker, project, admin_client, page
):
    html = admin_client.get(pending_jobs(project)[page]).content.decode()
    assert "No worker is running" in html
    assert 'http-equiv="refresh"' not in html and "frontend/live.js" in html
    assert 'data-live="3000"' in html or 'data-live="5000"' in html


def test_the_training_page_says_what_a_pending_run_waits_for(embedded_without_worker, project, admin_client):
    html = admin_client.get(pending_jobs(project)["training"]).content.decode()
    blend = TrainingBlend.objects.get()
    assert f"pending (building blend {blend.pk})" in html


def test_finished_jobs_stop_the_polling(project, admin_client):
    pages = pending_jobs(project)
    for model in (TrainingRun, EvaluationRun, JuryJob):
        model.objects.update(status="succeeded")
    for url in pages.values():
        html = admin_client.get(url).content.decode()
        assert 'data-live=""' in html and 'data-live="3000"' not in html and 'data-live="5000"' not in html
