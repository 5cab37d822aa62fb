"""The REST API for imports and exports, through Celery (in-process, or a real worker on Redis)."""

import os
from pathlib import Path

import pytest
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from annotation.models import ExportSnapshot, ImportBatch, Sample
from tests.conftest import USES_REDIS, wait_until_finished

pytestmark = pytest.mark.django_db(transaction=True)


def upload(client, project, path, adapter):
    with path.open("rb") as stream:
        return client.post(f"/api/projects/{project.pk}/imports/", {"file": stream, "adapter": adapter})


def test_import_and_export_through_the_api(admin_client, project, shared_data, celery_worker):
    response = upload(admin_client, project, shared_data / "xstest/xstest_prompts.csv", "xstest_prompts")
    assert response.status_code == 202, response.content
    batch = wait_until_finished(ImportBatch, response.json()["id"])
    assert (batch.status, batch.created_count) == ("succeeded", 450), batch.error
    assert admin_client.get(f"/api/projects/{project.pk}/samples/").json()["count"] == 450

    response = admin_client.post(
        f"/api/projects/{project.pk}/exports/",
        {"formats": ["jsonl"], "split_ratios": {"train": 0.5, "validation": 0.25, "test": 0.25}},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    snapshot = wait_until_finished(ExportSnapshot, response.json()["id"])
    assert snapshot.status == "succeeded", snapshot.error
    body = admin_client.get(f"/api/exports/{snapshot.pk}/")
    assert sum(c["rows"] for c in body.json()["manifest"]["counts"].values()) == 450
    download = admin_client.get(f"/api/exports/{snapshot.pk}/files/train.jsonl/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content).count(b"\n") == snapshot.manifest["counts"]["train"]["rows"]
    assert admin_client.get(f"/api/exports/{snapshot.pk}/files/..%2Fsecret/").status_code == 404


def test_bad_upload_ends_as_a_failed_batch(admin_client, project, tmp_path, celery_worker):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": "1", "prompt": "a", "prompt_label": "safe"}\n{oops\n', encoding="utf-8")
    batch = wait_until_finished(ImportBatch, upload(admin_client, project, path, "aegis2").json()["id"])
    assert batch.status == "failed"
    assert "broken.jsonl, line 2" in batch.error
    assert not Sample.objects.exists()


def test_unknown_adapter_is_refused(admin_client, project, shared_data):
    response = upload(admin_client, project, shared_data / "xstest/xstest_prompts.csv", "nope")
    assert response.status_code == 400 and "adapter" in response.json()


def test_annotators_cannot_import_export_or_read_samples(client, django_user_model, project, shared_data):
    from annotation.models import Membership

    annie = django_user_model.objects.create_user("annie", password="pw-annie-123")
    client.force_login(annie)
    csv_file = shared_data / "xstest/xstest_prompts.csv"
    assert upload(client, project, csv_file, "xstest_prompts").status_code == 404  # not a member: not visible
    assert client.get("/api/projects/").json()["count"] == 0
    Membership.objects.create(project=project, user=annie, role="annotator")
    assert client.get("/api/projects/").json()["count"] == 1
    assert upload(client, project, csv_file, "xstest_prompts").status_code == 403
    assert client.post(f"/api/projects/{project.pk}/exports/", {}, content_type="application/json").status_code == 403
    assert client.get(f"/api/projects/{project.pk}/samples/").status_code == 403
    assert client.get("/api/imports/").json()["count"] == 0


def test_anonymous_is_refused(client, project):
    assert client.get("/api/projects/").status_code == 403
    assert client.get("/").status_code == 302


@pytest.mark.redis
def test_tasks_really_go_through_the_worker(settings):
    assert USES_REDIS and settings.CELERY_TASK_ALWAYS_EAGER is False
    assert settings.CELERY_BROKER_URL.startswith("redis://")


class SpoolingUploadHandler(TemporaryFileUploadHandler):
    """Django's handler for large uploads, noting the inode of each temporary file it spools to."""

    inodes: list[int] = []

    def file_complete(self, file_size):
        SpoolingUploadHandler.inodes.append(os.stat(self.file.temporary_file_path()).st_ino)
        return super().file_complete(file_size)


def test_an_upload_spooled_to_disk_is_moved_into_place_not_copied(admin_client, project, tmp_path, settings):
    """Over FILE_UPLOAD_MAX_MEMORY_SIZE Django spools an upload to a temporary file; the import
    keeps that very file (a rename) instead of writing the upload a second time."""
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.SpoolingUploadHandler"]
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)  # the file system of MEDIA_ROOT in the tests
    SpoolingUploadHandler.inodes.clear()
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a", "prompt": "hello"}\n{"id": "b", "prompt": "there"}\n', encoding="utf-8")
    response = upload(admin_client, project, path, "generic")
    assert response.status_code == 202, response.content
    batch = wait_until_finished(ImportBatch, response.json()["id"])
    assert (batch.status, batch.created_count) == ("succeeded", 2), batch.error
    stored = Path(batch.stored_path)
    assert stored.read_bytes() == path.read_bytes()
    assert SpoolingUploadHandler.inodes == [stored.stat().st_ino]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".upload.jsonl")]
