"""The admin: upload a file into a project, export it, and hostile text shown escaped."""

import pytest

from annotation.models import ExportSnapshot, ImportBatch, Sample
from tests.conftest import wait_until_finished

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root-admin", password="pw-root-123"))
    return client


def test_admin_upload_and_export(superuser_client, project, shared_data, celery_worker):
    page = superuser_client.get(f"/admin/annotation/project/{project.pk}/change/")
    assert f"/admin/annotation/project/{project.pk}/import/".encode() in page.content
    with (shared_data / "simple_safety_tests/SimpleSafetyTests_test_cases.csv").open("rb") as stream:
        response = superuser_client.post(
            f"/admin/annotation/project/{project.pk}/import/", {"file": stream, "adapter": "simple_safety_tests"}
        )
    assert response.status_code == 302
    batch = wait_until_finished(ImportBatch, ImportBatch.objects.get().pk)
    assert (batch.status, batch.created_count) == ("succeeded", 100), batch.error

    response = superuser_client.post(
        "/admin/annotation/project/", {"action": "export_projects", "_selected_action": [project.pk]}
    )
    assert response.status_code == 302
    snapshot = wait_until_finished(ExportSnapshot, ExportSnapshot.objects.get().pk)
    assert snapshot.status == "succeeded", snapshot.error


def test_hostile_text_is_escaped_in_the_admin(superuser_client, project, tmp_path):
    from annotation.services import import_samples

    path = tmp_path / "hostile.jsonl"
    path.write_text(
        '{"id": "h1", "prompt": "<script>alert(1)</script><img src=x onerror=alert(2)>"}\n', encoding="utf-8"
    )
    import_samples(project, path, adapter="generic")
    sample = Sample.objects.get(uid="h1")
    for url in ("/admin/annotation/sample/", f"/admin/annotation/sample/{sample.pk}/change/"):
        body = superuser_client.get(url).content
        assert b"<script>alert(1)" not in body and b"<img src=x" not in body
        assert b"&lt;script&gt;alert(1)" in body


def test_admin_adds_members_and_queues_samples(superuser_client, project, shared_data, django_user_model):
    from annotation.models import Membership, QueueItem
    from annotation.services import import_samples

    ann = django_user_model.objects.create_user("ann")
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    page = superuser_client.get(f"/admin/annotation/project/{project.pk}/change/").content.decode()
    assert "memberships-TOTAL_FORMS" in page
    Membership.objects.create(project=project, user=ann, role="annotator")
    ids = list(Sample.objects.filter(project=project).values_list("pk", flat=True)[:7])
    response = superuser_client.post(
        "/admin/annotation/sample/", {"action": "queue_for_annotation", "_selected_action": ids}
    )
    assert response.status_code == 302
    assert QueueItem.objects.filter(batch__project=project).count() == 7
