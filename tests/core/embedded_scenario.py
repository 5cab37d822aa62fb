"""Run by tests/core/test_embedded_broker.py in its own process, with AEGIS_EMBEDDED_BROKER=1 and a
SQLite database file of its own: starts an export the way the console does and prints, as JSON
lines, what the request side saw at once and how the job ended."""

import json
import os
import sys
import time

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402

from annotation.jobs import launch_export  # noqa: E402
from annotation.models import ExportSnapshot, Project  # noqa: E402
from annotation.services import create_project, import_samples, start_import_batch  # noqa: E402
from core.jobs import start_job  # noqa: E402
from core.selectors import worker_notice  # noqa: E402


def report(**fields) -> None:
    print(json.dumps(fields), flush=True)


def prepare(rows_path: str) -> None:
    get_user_model().objects.create_user("boss", is_staff=True, is_superuser=True)
    project = create_project(name="Embedded", slug="embedded")
    import_samples(project, rows_path, adapter="aegis2")


def export(deadline_seconds: float) -> None:
    boss = get_user_model().objects.get(username="boss")
    project = Project.objects.get(slug="embedded")
    started = time.monotonic()
    snapshot = launch_export(project, by=boss)
    report(
        step="started",
        pk=snapshot.pk,
        status=snapshot.status,
        seconds=time.monotonic() - started,
        notice=worker_notice(),
    )
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        snapshot = ExportSnapshot.objects.get(pk=snapshot.pk)
        if snapshot.finished:
            break
        time.sleep(0.2)
    report(step="ended", status=snapshot.status, error=snapshot.error, done=snapshot.done,
           worker=snapshot.worker, here=os.getpid())  # fmt: skip


def start_import(rows_path: str) -> None:
    """Queues an import of the file (stored where it is) and prints its id."""
    project = Project.objects.get(slug="embedded")
    with transaction.atomic():
        batch = start_import_batch(project, adapter="aegis2", filename="big.jsonl", stored_path=rows_path)
        start_job(batch)
    report(step="queued", pk=batch.pk)


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    elif sys.argv[1] == "import":
        start_import(sys.argv[2])
    else:
        export(float(sys.argv[2]))
