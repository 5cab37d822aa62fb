"""The project console in the app: create, members, upload with progress, queue, export and download."""

import io
import json

import pyarrow.parquet as pq
import pytest

from annotation.models import AssignmentBatch, ExportSnapshot, ImportBatch, Membership, Project, QueueItem
from annotation.services import add_member, create_project, import_samples
from tests.conftest import USES_REDIS, wait_until_finished

pytestmark = pytest.mark.django_db(transaction=True)
SST = "simple_safety_tests/SimpleSafetyTests_test_cases.csv"


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_user("boss", password="pw-boss-123", is_staff=True)


@pytest.fixture
def boss_client(client, boss):
    client.force_login(boss)
    return client


def test_staff_create_a_project_with_its_settings(boss_client):
    response = boss_client.post(
        "/console/",
        {
            "name": "Chat safety",
            "slug": "chat-safety",
            "annotations_per_sample": 2,
            "needs_caution_policy": "safe",
            "guidelines": "Label the <b>prompt</b> first.",
        },
    )
    project = Project.objects.get(slug="chat-safety")
    assert response.status_code == 302 and response.url == f"/console/projects/{project.pk}/members/"
    assert (project.annotations_per_sample, project.needs_caution_policy) == (2, "safe")
    assert project.guidelines == "Label the <b>prompt</b> first." and project.taxonomy.frozen
    page = boss_client.get(response.url).content.decode()
    assert "flash-success" in page and "Chat safety" in page

    again = boss_client.post(
        "/console/", {"name": "X", "slug": "chat-safety", "annotations_per_sample": 0, "needs_caution_policy": "safe"}
    )
    text = again.content.decode()
    assert again.status_code == 400 and "exists already" in text and "greater than or equal to 1" in text


def test_non_staff_cannot_create_projects(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ann"))
    assert client.post("/console/", {"name": "X", "slug": "x"}).status_code == 403
    assert "Create a project" not in client.get("/console/").content.decode()


def test_members_are_added_changed_and_removed(boss_client, project, django_user_model):
    django_user_model.objects.create_user("ann")
    url = f"/console/projects/{project.pk}/members/"
    assert boss_client.post(url, {"add": "1", "username": "ann", "role": "annotator"}).status_code == 302
    membership = Membership.objects.get(project=project, user__username="ann")
    boss_client.post(url, {"change": "1", "membership": membership.pk, "role": "reviewer"})
    assert list(Membership.objects.filter(project=project).values_list("role", flat=True)) == ["reviewer"]

    page = boss_client.post(url, {"add": "1", "username": "nobody", "role": "annotator"}, follow=True)
    assert "no active account &#x27;nobody&#x27;" in page.content.decode()
    assert "flash-error" in page.content.decode()

    boss_client.post(url, {"remove": membership.pk})
    assert not Membership.objects.filter(project=project).exists()


def test_a_project_admin_cannot_drop_their_own_admin_role(client, project, boss, django_user_model):
    lead = django_user_model.objects.create_user("lead")
    membership = add_member(project, by=boss, username="lead", role="admin")
    client.force_login(lead)
    page = client.post(f"/console/projects/{project.pk}/members/", {"remove": membership.pk}, follow=True)
    assert "cannot remove your own admin role" in page.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_annotators_and_reviewers_cannot_manage_a_project(client, project, boss, django_user_model):
    reviewer = django_user_model.objects.create_user("rev")
    add_member(project, by=boss, username="rev", role="reviewer")
    client.force_login(reviewer)
    for url in ("members", "imports", "exports"):
        assert client.get(f"/console/projects/{project.pk}/{url}/").status_code == 403
    assert client.post(f"/console/projects/{project.pk}/queue/", {}).status_code == 403


def test_upload_with_a_detected_adapter_shows_progress_to_the_end(boss_client, project, shared_data, celery_worker):
    with (shared_data / SST).open("rb") as stream:
        response = boss_client.post(
            f"/console/projects/{project.pk}/imports/", {"file": stream, "adapter": "detect", "source_name": ""}
        )
    batch = ImportBatch.objects.get(project=project)
    assert response.status_code == 302 and response.url == f"/console/imports/{batch.pk}/"
    assert batch.adapter == "simple_safety_tests"
    wait_until_finished(ImportBatch, batch.pk)
    state = boss_client.get(f"/console/imports/{batch.pk}/status.json").json()
    assert state["status"] == "succeeded" and state["finished"]
    assert state["rows_read"] == 100 and state["created"] == 100 and state["error"] == ""
    page = boss_client.get(response.url).content.decode()
    assert 'data-status="succeeded"' in page and "console.js" in page


def test_a_failed_import_shows_its_located_error_and_no_success_banner(boss_client, project, tmp_path, celery_worker):
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "hi", "prompt_label": "safe"}\n{"id": "b", "prompt": "x", "prompt_label": "maybe"}\n'
    )
    with path.open("rb") as stream:
        response = boss_client.post(f"/console/projects/{project.pk}/imports/", {"file": stream, "adapter": "aegis2"})
    batch = wait_until_finished(ImportBatch, ImportBatch.objects.get(project=project).pk)
    assert batch.status == "failed"
    page = boss_client.get(response.url).content.decode()
    assert '<ul class="flash">' not in page  # no "started" banner of any colour
    assert '<p class="flash-success" id="import-done" role="status" hidden>' in page
    assert "broken.jsonl, line 2, field &#x27;prompt_label&#x27;" in page
    state = boss_client.get(f"/console/imports/{batch.pk}/status.json").json()
    assert state["status"] == "failed" and "line 2" in state["error"] and project.samples.count() == 0


def test_an_undetectable_file_is_refused_with_its_columns_named(boss_client, project, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("question,answer\nwhat,that\n")
    with path.open("rb") as stream:
        response = boss_client.post(f"/console/projects/{project.pk}/imports/", {"file": stream, "adapter": "detect"})
    text = response.content.decode()
    assert response.status_code == 400 and "odd.csv: cannot tell the format from the columns (answer, question)" in text
    assert not ImportBatch.objects.exists()


def test_live_progress_counts_rows_while_the_import_runs(settings, project, tmp_path, monkeypatch):
    from annotation.importing.progress import read_progress
    from annotation.services import start_import_batch
    from annotation.services.imports import run_import_batch

    settings.AEGIS_IMPORT_BATCH_SIZE = 10
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "prompt": f"prompt {i}"}) + "\n" for i in range(35)))
    batch = start_import_batch(project, adapter="generic", filename="rows.jsonl", stored_path=str(path))
    seen = []
    from annotation.importing import writer

    original = writer._BatchWriter.write

    def write_and_look(self, chunk):  # what the progress page reads while the transaction is open
        original(self, chunk)
        seen.append(read_progress(batch.pk))

    monkeypatch.setattr(writer._BatchWriter, "write", write_and_look)
    run_import_batch(batch)
    assert seen == [None, 10, 20, 30]
    assert read_progress(batch.pk) is None  # cleared when the import ends


def test_queueing_by_filter_gives_one_message(boss_client, project, shared_data):
    import_samples(project, shared_data / SST, adapter="simple_safety_tests")
    url = f"/console/projects/{project.pk}/queue/"
    page = boss_client.post(url, {"q": "", "limit": "40", "name": "first"}, follow=True).content.decode()
    assert page.count("flash-success") == 1 and "flash-error" not in page
    assert "Queued 40 samples in batch “first” (k = 3); 60 more match and wait for another batch (limit)." in page
    page = boss_client.post(url, {}, follow=True).content.decode()
    assert "Queued 60 samples" in page and "40 of the 100 matching were queued before" in page
    page = boss_client.post(url, {}, follow=True).content.decode()
    assert page.count("flash-error") == 1 and "flash-success" not in page
    assert "Nothing queued: all 100 matching samples are queued already; nothing was queued." in page
    assert QueueItem.objects.count() == 100 and AssignmentBatch.objects.count() == 2


def test_queueing_follows_the_browser_filters(boss_client, project, tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"id": "bread", "prompt": "How do I bake banana bread?"}, {"id": "gun", "prompt": "Where to buy a gun"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    import_samples(project, path, adapter="generic")
    response = boss_client.post(f"/console/projects/{project.pk}/queue/", {"q": "bread"})
    assert response.url == f"/console/projects/{project.pk}/samples/?q=bread"
    assert list(QueueItem.objects.values_list("sample__uid", flat=True)) == ["bread"]
    page = boss_client.post(f"/console/projects/{project.pk}/queue/", {"q": "nothing-like-this"}, follow=True)
    assert "Nothing queued: no sample matches these filters." in page.content.decode()


def test_export_offers_a_download_per_file_and_the_manifest(boss_client, project, shared_data, celery_worker):
    import_samples(project, shared_data / SST, adapter="simple_safety_tests")  # final labels: all unsafe
    response = boss_client.post(
        f"/console/projects/{project.pk}/exports/",
        {"formats": ["jsonl", "parquet"], "train": "0.8", "validation": "0.1", "test": "0.1", "split_seed": "s"},
    )
    assert response.status_code == 302
    snapshot = wait_until_finished(ExportSnapshot, ExportSnapshot.objects.get(project=project).pk)
    assert snapshot.status == "succeeded"
    page = boss_client.get(f"/console/projects/{project.pk}/exports/").content.decode()
    names = [*sorted(snapshot.manifest["files"]), "manifest.json"]
    for name in names:
        assert f'href="/console/exports/{snapshot.pk}/files/{name}" download' in page
    rows = 0
    for name in names:
        download = boss_client.get(f"/console/exports/{snapshot.pk}/files/{name}")
        assert download.status_code == 200 and f'filename="{name}"' in download["Content-Disposition"]
        body = b"".join(download.streaming_content)
        if name.endswith(".parquet"):
            rows += pq.read_table(io.BytesIO(body)).num_rows
        elif name == "manifest.json":
            assert json.loads(body)["counts"]["train"]["rows"] > 0
    assert rows == 100
    assert boss_client.get(f"/console/exports/{snapshot.pk}/files/..%2Fsecret").status_code == 404
    assert boss_client.get(f"/console/exports/{snapshot.pk}/files/other.csv").status_code == 404


def test_export_in_the_release_layout_from_the_console(boss_client, project, shared_data, celery_worker):
    import_samples(project, shared_data / SST, adapter="simple_safety_tests")
    response = boss_client.post(
        f"/console/projects/{project.pk}/exports/",
        {"profile": "release", "train": "0.8", "validation": "0.1", "test": "0.1", "split_seed": "s"},
    )
    assert response.status_code == 302
    snapshot = wait_until_finished(ExportSnapshot, ExportSnapshot.objects.get(project=project).pk)
    assert snapshot.status == "succeeded" and snapshot.profile == "release"
    assert {"train.json", "validation.json", "test.json", "README.md"} <= set(snapshot.manifest["files"])
    page = boss_client.get(f"/console/projects/{project.pk}/exports/").content.decode()
    assert f'href="/console/exports/{snapshot.pk}/files/train.json" download' in page


def test_bad_export_options_are_named(boss_client, project):
    response = boss_client.post(
        f"/console/projects/{project.pk}/exports/",
        {"formats": ["jsonl"], "train": "0.5", "validation": "0.1", "test": "0.1", "split_seed": "s"},
    )
    assert response.status_code == 400 and "must be non-negative and add up to 1" in response.content.decode()
    assert not ExportSnapshot.objects.exists()


def test_other_projects_admins_cannot_download(client, boss, project, django_user_model):
    other = create_project(name="Other", slug="other")
    lead = django_user_model.objects.create_user("lead")
    add_member(other, by=boss, username="lead", role="admin")
    snapshot = ExportSnapshot.objects.create(project=project, status="succeeded", manifest={"files": {}})
    client.force_login(lead)
    assert client.get(f"/console/exports/{snapshot.pk}/files/manifest.json").status_code == 403
    assert "Test project" not in client.get("/console/").content.decode()


@pytest.mark.skipif(USES_REDIS, reason="a worker may be running in the Redis pass")
def test_a_pending_import_with_no_worker_says_so(boss_client, project, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # as with a broker and no worker started
    batch = ImportBatch.objects.create(project=project, adapter="generic", source_name="g", filename="f.jsonl")
    page = boss_client.get(f"/console/imports/{batch.pk}/").content.decode()
    assert "No worker is running" in page and 'data-status="pending"' in page
