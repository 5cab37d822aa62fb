"""Celery tasks of the annotation app: thin shells around the services (options: core.tasks)."""

from core.tasks import job_task

from .importing.errors import ImportDataError
from .models import AgreementReport, ExportSnapshot, ImportBatch
from .services import run_export, run_import_batch
from .services.reports import compute_agreement_report


@job_task("annotation.import_batch")
def import_batch_task(batch_id: int) -> int:
    """Runs a recorded import; a bad file ends as a failed batch, not a task error."""
    try:
        run_import_batch(ImportBatch.objects.get(pk=batch_id))
    except ImportDataError:
        pass
    return batch_id


@job_task("annotation.export_snapshot")
def export_snapshot_task(snapshot_id: int) -> int:
    run_export(ExportSnapshot.objects.get(pk=snapshot_id))
    return snapshot_id


@job_task("annotation.agreement_report")
def agreement_report_task(report_id: int) -> int:
    compute_agreement_report(AgreementReport.objects.get(pk=report_id))
    return report_id
