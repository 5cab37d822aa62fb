"""Reads of the jury."""

from django.conf import settings
from django.db.models import QuerySet

from annotation.models import Project

from .models import Juror, JuryJob


def project_jurors(project: Project) -> QuerySet[Juror]:
    return Juror.objects.filter(project=project).order_by("name")


def project_jury_jobs(project: Project) -> QuerySet[JuryJob]:
    return JuryJob.objects.filter(project=project)


def worker_notice() -> str:
    """Empty when jobs will run; otherwise what a person should know (for the jobs page)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return ""
    from config.celery import app

    try:
        replies = app.control.inspect(timeout=1.0).ping() or {}
    except OSError as error:
        return f"The task broker cannot be reached ({error}); jobs cannot start."
    if not replies:
        return "No worker is running: jobs wait in the queue until one starts (celery -A config worker -Q default)."
    return ""
