"""Reads of the kernel."""

from django.conf import settings


def worker_notice() -> str:
    """Empty when jobs will run; otherwise what a person should know (for the job pages)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return ""
    if settings.AEGIS_EMBEDDED_BROKER:
        from .worker_presence import live_workers

        if live_workers():
            return ""
        return (
            "No worker is running: jobs wait in the queue until one starts (scripts/demo starts one; or "
            "AEGIS_EMBEDDED_BROKER=1 celery -A config worker -P threads -c 2 -B -Q default,gpu,supervise)."
        )
    from celery import current_app

    try:
        replies = current_app.control.inspect(timeout=1.0).ping() or {}
    except OSError as error:
        return f"The task broker cannot be reached ({error}); jobs start once it is back."
    if not replies:
        return "No worker is running: jobs wait in the queue until one starts (celery -A config worker -Q default)."
    return ""
