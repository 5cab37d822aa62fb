"""What a web process's first requests would otherwise import, loaded when it starts.

Loaded lazily, the URLconf's views cost the first request of each gunicorn worker a few tenths of a
second, and the first job it starts (an import, an export) as much again: Celery registers the
tasks and imports its broker transport and result backend (redis-py) then. Loaded before
gunicorn forks (``--preload``), the workers share these modules' pages instead of each importing
its own copy. Nothing connects here: sockets opened before a fork would be shared by every worker.
"""

from importlib import import_module

from celery.app import backends
from django.conf import settings


def load_request_modules() -> None:
    import_module(settings.ROOT_URLCONF)  # and with it every view it routes to
    from celery import current_app

    from core.jobs import job_models

    for app_label in sorted({model._meta.app_label for model in job_models()}):
        import_module(f"{app_label}.tasks")
    current_app.finalize(auto=True)
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        current_app.connection_for_write().release()  # resolving the broker's transport imports it
        if settings.CELERY_RESULT_BACKEND:
            backends.by_url(settings.CELERY_RESULT_BACKEND, current_app.loader)
