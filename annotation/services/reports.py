"""Agreement reports computed once per state of the labels (in a Celery task for big projects)."""

from django.db import transaction
from django.db.models import Count, Max

from core.jobs import JobRun

from ..models import AgreementReport, Annotation, JobStatus, Project, ProjectRole
from ..permissions import require_role
from ..selectors import agreement_report


def labels_fingerprint(project: Project) -> str:
    """Changes whenever an annotation of the project is added, changed or removed."""
    state = Annotation.objects.filter(sample__project=project).aggregate(n=Count("pk"), last=Max("updated_at"))
    return f"{state['n']}:{state['last'].isoformat() if state['last'] else '-'}"


def current_agreement_report(project: Project, user) -> tuple[AgreementReport, bool]:
    """The report for the labels as they are now, and whether it still has to be computed."""
    require_role(user, project, ProjectRole.ADMIN, ProjectRole.REVIEWER)
    fingerprint = labels_fingerprint(project)
    with transaction.atomic():
        report = (
            AgreementReport.objects.filter(project=project, labels_fingerprint=fingerprint)
            .exclude(status=JobStatus.FAILED)
            .first()
        )
        if report is not None:
            return report, False
        return AgreementReport.objects.create(project=project, labels_fingerprint=fingerprint), True


def compute_agreement_report(report: AgreementReport) -> AgreementReport:
    with JobRun(report) as run:
        if run.claimed:
            run.succeed(report=agreement_report(report.project))
    return report
