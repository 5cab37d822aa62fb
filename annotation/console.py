"""Reads of the project console: members, imports with live progress, batches, export files."""

from pathlib import Path
from typing import Any

from django.db.models import Count, Q, QuerySet

from core.models import FINISHED

from .importing.progress import read_progress
from .models import AssignmentBatch, ExportSnapshot, ImportBatch, JobStatus, Membership, Project, ProjectRole
from .selectors import user_projects


def console_projects(user) -> QuerySet[Project]:
    """Projects the person administers or reviews, with counts."""
    projects = user_projects(user)
    if user.is_staff:
        return projects
    return projects.filter(
        memberships__user=user, memberships__role__in=[ProjectRole.ADMIN, ProjectRole.REVIEWER]
    ).distinct()


def project_members(project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username", "role")


def import_status(batch: ImportBatch) -> dict[str, Any]:
    """What the progress page shows; while running, rows read so far come from the live counter."""
    running = batch.status == JobStatus.RUNNING
    live = read_progress(batch.pk) if running else None
    return {
        "id": batch.pk,
        "status": batch.status,
        "finished": batch.status in FINISHED,
        "filename": batch.filename,
        "adapter": batch.adapter,
        "source_name": batch.source_name,
        "rows_read": live if live is not None else batch.rows_read,
        "created": batch.created_count,
        "duplicates": batch.duplicate_count,
        "existing": batch.existing_count,
        "error": batch.error,
    }


def project_batches(project: Project) -> QuerySet[AssignmentBatch]:
    return (
        AssignmentBatch.objects.filter(project=project)
        .annotate(item_count=Count("items"), done_count=Count("items", filter=Q(items__done=True)))
        .order_by("-created_at", "-pk")
    )


def export_files(snapshot: ExportSnapshot) -> list[dict[str, Any]]:
    """A finished export's files as its manifest lists them, the manifest last."""
    if snapshot.status != JobStatus.SUCCEEDED:
        return []
    listed = (snapshot.manifest or {}).get("files", {})
    return [{"name": name, **listed[name]} for name in sorted(listed)] + [{"name": "manifest.json"}]


def export_file_path(snapshot: ExportSnapshot, name: str) -> Path | None:
    """The path of one file the export's manifest lists (or the manifest), else None."""
    if name not in {entry["name"] for entry in export_files(snapshot)}:
        return None
    return Path(snapshot.directory) / name
