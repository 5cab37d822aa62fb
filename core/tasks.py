"""Celery tasks of the kernel: the options every job task shares, and supervision."""

from celery import shared_task

from .jobs import CONNECTION_LOST
from .supervision import supervise_jobs

# acks_late + reject_on_worker_lost: a task whose process dies goes back to the queue at once; a lost
# database connection retries the task with back-off, from the job's last checkpoint.
JOB_TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": CONNECTION_LOST,
    "retry_backoff": True,
    "max_retries": 5,
}


def job_task(name: str):
    """The decorator of a job's Celery task."""
    return shared_task(name=name, **JOB_TASK_OPTIONS)


@shared_task(name="core.supervise_jobs", ignore_result=True)
def supervise_jobs_task() -> dict[str, int]:
    return supervise_jobs()
