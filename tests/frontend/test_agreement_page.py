"""The agreement page: computed by a task, cached until labels change, with plots."""

import pytest

from annotation.models import AgreementReport, Annotation, Membership
from annotation.services import import_samples
from tests.conftest import wait_until_finished

pytestmark = pytest.mark.django_db(transaction=True)


def test_report_page_plots_and_cache(client, project, shared_data, django_user_model, celery_worker):
    import_samples(
        project, shared_data / "xstest/model_completions/xstest_v2_completions_gpt4.csv", adapter="xstest_completions"
    )
    reviewer = django_user_model.objects.create_user("rev")
    client.force_login(reviewer)
    assert client.get(f"/projects/{project.pk}/agreement/").status_code == 403
    Membership.objects.create(project=project, user=reviewer, role="reviewer")
    client.get(f"/projects/{project.pk}/agreement/")
    record = wait_until_finished(AgreementReport, AgreementReport.objects.get().pk)
    assert record.status == "succeeded", record.error
    page = client.get(f"/projects/{project.pk}/agreement/").content.decode()
    assert "response_refusal" in page and "xstest.annotation_1" in page
    for url in (
        f"/projects/{project.pk}/agreement/{record.pk}/categories.png",
        f"/projects/{project.pk}/agreement/{record.pk}/kappa/response_refusal.png",
        f"/projects/{project.pk}/agreement/{record.pk}/confusion/response_refusal.png",
    ):
        response = client.get(url)
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG"), url
    client.get(f"/projects/{project.pk}/agreement/")
    assert AgreementReport.objects.count() == 1  # cached: labels unchanged
    annotation = Annotation.objects.first()
    annotation.response_refusal = "full_refusal" if annotation.response_refusal != "full_refusal" else "full_compliance"
    annotation.save()
    client.get(f"/projects/{project.pk}/agreement/")
    assert AgreementReport.objects.count() == 2  # labels changed: computed again
