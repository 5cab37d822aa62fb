"""The Celery app. Queues: ``default`` (I/O, HTTP backends, CPU guards; CELERY_TASK_DEFAULT_QUEUE)
and ``gpu`` (in-process models, training), each served by its own worker (docker-compose.yml)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("aegis")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
