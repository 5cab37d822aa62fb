"""Agreement plots of a field without pairs of ratings: an empty plot that says so, never a 500."""

import pytest

from annotation.models import AgreementReport, Annotation, Membership, Sample
from annotation.services.reports import agreement_report

pytestmark = pytest.mark.django_db


def test_plots_of_a_field_without_pairs_render_empty(client, project, django_user_model):
    """One annotator per sample: every field has ratings but no pair of them."""
    annotator = django_user_model.objects.create_user("ann0")
    for i in range(3):
        sample = Sample.objects.create(project=project, uid=f"s{i}", turns=[], prompt=f"p{i}", source_name="t",
                                       content_hash=f"h{i}")  # fmt: skip
        Annotation.objects.create(sample=sample, annotator=annotator, prompt_label="safe")
    report = agreement_report(project, bootstrap=0)
    assert report["fields"]["prompt_label"]["confusion"]["counts"] == []
    record = AgreementReport.objects.create(project=project, labels_fingerprint="x", status="succeeded", report=report)
    reviewer = django_user_model.objects.create_user("rev")
    Membership.objects.create(project=project, user=reviewer, role="reviewer")
    client.force_login(reviewer)
    for name in ("confusion", "kappa"):
        response = client.get(f"/projects/{project.pk}/agreement/{record.pk}/{name}/prompt_label.png")
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG"), name
