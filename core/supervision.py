"""Supervision, run every AEGIS_SUPERVISE_SECONDS by celery beat: a running job whose worker is gone
is given back to the queue (it resumes where it stopped) up to AEGIS_JOB_MAX_ATTEMPTS times, then
failed with the reason; a pending job that no worker took within AEGIS_JOB_DISPATCH_WINDOW seconds
(the broker was down, or lost its queue) is sent again; a cancelled job whose worker is gone ends."""

import logging
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .jobs import dispatch_job, end_job, holder_gone, job_models, release_job
from .models import JobStatus

logger = logging.getLogger(__name__)


def supervise_jobs() -> dict[str, int]:
    """One pass over every unfinished job; returns how many were re-queued, failed, cancelled, re-sent."""
    counts: Counter[str] = Counter()
    dispatch_before = timezone.now() - timedelta(seconds=settings.AEGIS_JOB_DISPATCH_WINDOW)
    for model in job_models():
        for job in model.objects.filter(status=JobStatus.RUNNING):
            if not holder_gone(job):
                continue
            last = job.heartbeat_at or job.started_at or job.created_at
            lost = f"its worker {job.worker or '(unknown)'} stopped (last heartbeat {last:%Y-%m-%d %H:%M:%S} UTC)"
            if job.cancel_requested:
                counts["cancelled"] += end_job(job, JobStatus.CANCELLED, held_by=job.worker)
            elif job.attempts >= settings.AEGIS_JOB_MAX_ATTEMPTS:
                reason = f"{lost}; given up after {job.attempts} attempts (AEGIS_JOB_MAX_ATTEMPTS)"
                counts["failed"] += end_job(job, JobStatus.FAILED, error=reason, held_by=job.worker)
            elif release_job(job, held_by=job.worker):
                logger.warning("%s %s: %s; queued again", model.__name__, job.pk, lost)
                counts["requeued"] += 1
                dispatch_job(model, job.pk)
        waiting = model.objects.filter(status=JobStatus.PENDING).filter(
            Q(dispatched_at__lt=dispatch_before) | Q(dispatched_at__isnull=True, created_at__lt=dispatch_before)
        )
        for pk in waiting.values_list("pk", flat=True):
            counts["resent"] += dispatch_job(model, pk)
    return dict(counts)
