"""The job kernel's data: one abstract Job that every long job extends."""

from pathlib import Path
from typing import ClassVar

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobQuerySet(models.QuerySet):
    def succeeded(self) -> "JobQuerySet":
        return self.filter(status=JobStatus.SUCCEEDED)

    def unfinished(self) -> "JobQuerySet":
        return self.exclude(status__in=FINISHED)


class Job(models.Model):
    """What every long job records: status, progress (``done`` of ``total``), a cancel request, the
    error, who asked and when, and for supervision the worker holding it, its heartbeat, how many
    times a worker took it and when it was last handed to the broker.

    A concrete job names its Celery task (``task_name``), the queue it goes to (``task_queue``) and
    the temporary files a failed attempt may leave behind (``leftover_paths``)."""

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="Last handed to the broker.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of its worker.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker took the job.")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process holding it.")

    objects = JobQuerySet.as_manager()

    task_name: ClassVar[str] = ""

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def succeeded(self) -> bool:
        return self.status == JobStatus.SUCCEEDED

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def task_queue(self) -> str:
        return "default"

    def leftover_paths(self) -> list[Path]:
        """Temporary files or folders an interrupted attempt may have left (removed on failure)."""
        return []
