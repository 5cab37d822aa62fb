"""Celery tasks of the annotation app: thin shells around the services."""

from celery import shared_task

from .importing.errors import ImportDataError
from .models import AgreementReport, ExportSnapshot, ImportBatch
from .services import run_export, run_import_batch
from .services.reports import compute_agreement_report


@shared_task(name="annotation.import_batch", acks_late=True)
def import_batch_task(batch_id: int) -> int:
    """Runs a recorded import; a bad file ends as a failed batch, not a task error."""
    try:
        run_import_batch(ImportBatch.objects.get(pk=batch_id))
    except ImportDataError:
        pass
    return batch_id


@shared_task(name="annotation.export_snapshot", acks_late=True)
def export_snapshot_task(snapshot_id: int) -> int:
    run_export(ExportSnapshot.objects.get(pk=snapshot_id))
    return snapshot_id


@shared_task(name="annotation.agreement_report", acks_late=True)
def agreement_report_task(report_id: int) -> int:
    compute_agreement_report(AgreementReport.objects.get(pk=report_id))
    return report_id
