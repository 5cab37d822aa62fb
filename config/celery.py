"""The Celery app. Queues: ``default`` (I/O, HTTP backends, CPU guards; CELERY_TASK_DEFAULT_QUEUE),
``gpu`` (in-process models, training), each served by its own worker, and ``supervise`` (the job
supervisor that celery beat schedules), served beside beat (docker-compose.yml). Jobs are started
with ``core.jobs.start_job``."""

import os

from celery import Celery
from celery.signals import worker_init

from config.startup_heap import freeze_startup_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("aegis")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The worker freezes its start-up heap before it forks its pool processes (config/startup_heap.py).
worker_init.connect(freeze_startup_heap, weak=False)
