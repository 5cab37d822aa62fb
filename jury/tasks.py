"""Celery tasks of the jury and generation jobs (thin). The queue is ``JuryJob.task_queue`` /
``GenerationJob.task_queue``: HTTP backends on ``default``, in-process models on ``gpu``. A lost
database connection retries the task with back-off; the retry resumes where the job stopped."""

from core.tasks import job_task

from .generation import run_generation_job
from .models import GenerationJob, JuryJob
from .services import run_jury_job


@job_task("jury.run_job")
def run_jury_job_task(job_id: int) -> int:
    """Re-running (a retried or redelivered task) resumes: answered samples are skipped."""
    run_jury_job(JuryJob.objects.get(pk=job_id))
    return job_id


@job_task("jury.run_generation_job")
def run_generation_job_task(job_id: int) -> int:
    """Re-running resumes: written responses and refusals drop out of the pending set."""
    run_generation_job(GenerationJob.objects.get(pk=job_id))
    return job_id
