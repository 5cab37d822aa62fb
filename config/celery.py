"""The Celery app. Queues: ``default`` (I/O, HTTP backends, CPU guards) and ``gpu`` (models)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

DEFAULT_QUEUE = "default"
GPU_QUEUE = "gpu"

app = Celery("aegis")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
