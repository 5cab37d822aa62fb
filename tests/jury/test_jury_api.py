"""Jury API and jobs page: jurors, start, progress, cancel, permissions, the no-worker notice."""

import pytest
from rest_framework.test import APIClient

from annotation.models import Membership
from annotation.services import import_samples
from core.selectors import worker_notice
from jury.models import JuryJob
from tests.conftest import wait_until_finished

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(project, django_user_model, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"prompt": "q", "response": "a"}\n', encoding="utf-8")
    import_samples(project, path, adapter="generic")
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    client = APIClient()
    client.force_authenticate(boss)
    return client


@pytest.fixture
def tasks_here():
    """Runs queued tasks in this process (this test's data is not committed for a worker to see)."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_jurors_and_jobs_through_the_api(project, admin_api, server, tasks_here, django_capture_on_commit_callbacks):
    server.script["answer"] = '{"User Safety": "unsafe", "Response Safety": "safe"}'
    host, port = server.server_address
    body = {"name": "nemo", "model": "nemo", "base_url": f"http://{host}:{port}/v1"}
    assert admin_api.post(f"/api/projects/{project.pk}/jurors/", body, format="json").status_code == 201
    assert [j["name"] for j in admin_api.get(f"/api/projects/{project.pk}/jurors/").json()] == ["nemo"]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(f"/api/projects/{project.pk}/jury-jobs/", {"part": "response"}, format="json")
    assert response.status_code == 202
    job = admin_api.get(f"/api/jury-jobs/{response.json()['id']}/").json()
    assert (job["status"], job["done"], job["decided"]) == ("succeeded", 1, 1)
    assert admin_api.post(f"/api/jury-jobs/{job['id']}/cancel/").json()["cancel_requested"] is True


def test_only_project_admins(project, admin_api, django_user_model):
    annie = django_user_model.objects.create_user("annie")
    Membership.objects.create(project=project, user=annie, role="annotator")
    client = APIClient()
    client.force_authenticate(annie)
    assert client.get(f"/api/projects/{project.pk}/jurors/").status_code == 403
    assert client.post(f"/api/projects/{project.pk}/jury-jobs/", {}, format="json").status_code == 403
    no_jurors = admin_api.post(f"/api/projects/{project.pk}/jury-jobs/", {}, format="json")
    assert no_jurors.status_code == 400 and "no active juror" in no_jurors.json()["detail"]


def test_jobs_page_and_worker_notice(project, admin_api, client, django_user_model, settings):
    boss = django_user_model.objects.get(username="boss")
    client.force_login(boss)
    page = client.get(f"/projects/{project.pk}/jury/").content.decode()
    assert "No jurors yet" in page and "No jury jobs yet" in page
    JuryJob.objects.create(project=project, part="response", total=3)
    assert client.post(f"/projects/{project.pk}/jury/", {"cancel": JuryJob.objects.get().pk}).status_code == 302
    assert JuryJob.objects.get().cancel_requested
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    assert "worker" in worker_notice() or "broker" in worker_notice()


@pytest.mark.django_db(transaction=True)
def test_jobs_page_starts_generation(project, admin_api, client, django_user_model, server, tmp_path, celery_worker):
    from annotation.services import import_samples
    from jury.models import GenerationJob

    client.force_login(django_user_model.objects.get(username="boss"))
    server.script["answer"] = "<script>alert(1)</script>"
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "p", "prompt": "<b>hi</b>"}\n', encoding="utf-8")
    import_samples(project, path, adapter="generic")
    host, port = server.server_address
    form = {
        "generate": "1",
        "kind": "response",
        "model": "m<i>",
        "backend": "openai",
        "base_url": f"http://{host}:{port}/v1",
    }
    assert client.post(f"/projects/{project.pk}/jury/", form).status_code == 302
    job = wait_until_finished(GenerationJob, GenerationJob.objects.get().pk)
    assert (job.status, job.done) == ("succeeded", 1)
    page = client.get(f"/projects/{project.pk}/jury/").content.decode()
    assert "No generation jobs yet" not in page and "Safe reframing" in page
    assert page.count("Start a generation job") == 1 and "<title>Jury · Test project</title>" in page
    assert "m&lt;i&gt;" in page and "m<i>" not in page
    error = client.post(f"/projects/{project.pk}/jury/", {**form, "base_url": ""}).content.decode()
    assert "base URL" in error


def test_duplicate_juror_name_and_metadata_url_answer_400(project, admin_api):
    url = f"/api/projects/{project.pk}/jurors/"
    body = {"name": "nemo", "model": "nemo", "base_url": "http://127.0.0.1:9/v1"}
    assert admin_api.post(url, body, format="json").status_code == 201
    again = admin_api.post(url, body, format="json")
    assert again.status_code == 400 and again.json() == {"name": ["this project already has a juror named 'nemo'"]}
    metadata = admin_api.post(url, {**body, "name": "m", "base_url": "http://169.254.169.254/v1"}, format="json")
    assert metadata.status_code == 400 and "link-local or metadata" in metadata.json()["base_url"][0]
    generation = admin_api.post(
        f"/api/projects/{project.pk}/generation-jobs/",
        {"kind": "response", "model": "m", "base_url": "http://169.254.169.254/v1"},
        format="json",
    )
    assert generation.status_code == 400 and "link-local or metadata" in generation.json()["base_url"][0]


def test_an_in_process_model_on_a_server_path_is_for_staff_only(project, django_user_model, tmp_path, settings):
    """Project admins who are not staff name in-process models by Hugging Face id, never by a server path."""
    admin = django_user_model.objects.create_user("admin")
    Membership.objects.create(project=project, user=admin, role="admin")
    client = APIClient()
    client.force_authenticate(admin)
    jurors = f"/api/projects/{project.pk}/jurors/"
    generation = f"/api/projects/{project.pk}/generation-jobs/"
    for path in ("/etc", str(tmp_path), "./models/secret"):
        body = {"name": "local", "model": path, "backend": "transformers"}
        refused = client.post(jurors, body, format="json")
        assert refused.status_code == 403 and "only staff may load a model" in refused.json()["detail"], path
        refused = client.post(generation, {"kind": "response", "model": path, "backend": "transformers"}, format="json")
        assert refused.status_code == 403 and "only staff may load a model" in refused.json()["detail"], path
    assert (
        client.post(jurors, {"name": "hub", "model": "org/guard", "backend": "transformers"}, format="json").status_code
        == 201
    )
    # Staff may, inside the configured roots only; an HTTP juror's model is a name the server reads.
    admin.is_staff = True
    admin.save()
    settings.AEGIS_SERVER_PATH_ROOTS = [str(tmp_path)]
    assert (
        client.post(
            jurors, {"name": "root", "model": str(tmp_path), "backend": "transformers"}, format="json"
        ).status_code
        == 201
    )
    outside = client.post(jurors, {"name": "etc", "model": "/etc", "backend": "transformers"}, format="json")
    assert outside.status_code == 403 and "AEGIS_SERVER_PATH_ROOTS" in outside.json()["detail"]
    named = {"name": "http", "model": "/any/name", "base_url": "http://127.0.0.1:9/v1"}
    assert client.post(jurors, named, format="json").status_code == 201
