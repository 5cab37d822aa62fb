"""Queueing selected samples from the Django admin answers with one message per project."""

import pytest

from annotation.models import QueueItem, Sample
from annotation.services import import_samples

pytestmark = pytest.mark.django_db


def test_queueing_many_selected_samples_gives_one_message(client, django_user_model, project, shared_data):
    client.force_login(django_user_model.objects.create_superuser("root-admin", password="pw-root-123"))
    import_samples(
        project, shared_data / "simple_safety_tests/SimpleSafetyTests_test_cases.csv", adapter="simple_safety_tests"
    )
    ids = list(Sample.objects.filter(project=project).values_list("pk", flat=True))
    page = client.post(
        "/admin/annotation/sample/", {"action": "queue_for_annotation", "_selected_action": ids}, follow=True
    ).content.decode()
    assert page.count('class="success"') == 1 and 'class="error"' not in page
    assert "queued 100 samples" in page and QueueItem.objects.count() == 100
