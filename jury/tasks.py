"""Celery tasks of the jury. HTTP backends run on the default queue."""

from celery import shared_task

from .models import JuryJob
from .services import run_jury_job


@shared_task(name="jury.run_job", acks_late=True)
def run_jury_job_task(job_id: int) -> int:
    """Re-running (a retried or redelivered task) resumes: answered samples are skipped."""
    run_jury_job(JuryJob.objects.get(pk=job_id))
    return job_id
