"""Queueing the samples a browser filter matches, with one outcome for the whole request."""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef

from ..browse import SampleFilters, in_split, matching_samples
from ..bulk import refresh_planner_statistics
from ..labels import LabelError
from ..models import AssignmentBatch, Project, QueueItem
from ..permissions import require_admin


@dataclass(frozen=True)
class QueueOutcome:
    batch: AssignmentBatch
    matched: int
    queued: int
    queued_before: int

    @property
    def message(self) -> str:
        """One sentence for the whole request."""
        notes = []
        if self.queued_before:
            notes.append(f"{self.queued_before} of the {self.matched} matching were queued before")
        left = self.matched - self.queued_before - self.queued
        if left:
            notes.append(f"{left} more match and wait for another batch (limit)")
        batch = self.batch
        tail = "".join(f"; {note}" for note in notes)
        return f"Queued {self.queued} samples in batch “{batch.name}” (k = {batch.annotations_per_sample}){tail}."


@transaction.atomic
def queue_matching_samples(
    project: Project, *, by, filters: SampleFilters, limit: int | None = None, name: str = ""
) -> QueueOutcome:
    """Puts the matching samples not queued before in a new batch (at most ``limit``, oldest
    first); raises one LabelError that says why when nothing is left to queue."""
    require_admin(by, project)
    if limit is not None and limit < 1:
        raise LabelError("limit", "must be at least 1")
    Project.objects.select_for_update().filter(pk=project.pk).first()  # one queueing at a time per project
    queued = Exists(QueueItem.objects.filter(sample=OuterRef("pk")))
    matching = matching_samples(project, filters).annotate(queued=queued).order_by("pk")
    wanted = in_split(project, filters.split) if filters.split else None
    matched, queued_before, fresh = 0, 0, []
    for pk, uid, was_queued in matching.values_list("pk", "uid", "queued").iterator(chunk_size=5000):
        if wanted and not wanted(uid):
            continue
        matched += 1
        queued_before += was_queued
        if not was_queued and (limit is None or len(fresh) < limit):
            fresh.append(pk)
    if not matched:
        raise LabelError("samples", "no sample matches these filters")
    if not fresh:
        raise LabelError("samples", f"all {matched} matching samples are queued already; nothing was queued")
    batch = AssignmentBatch.objects.create(
        project=project,
        name=name or f"{len(fresh)} samples queued from the browser",
        annotations_per_sample=project.annotations_per_sample,
        created_by=by,
    )
    QueueItem.objects.bulk_create((QueueItem(batch=batch, sample_id=pk) for pk in fresh), batch_size=5000)
    refresh_planner_statistics(QueueItem)
    return QueueOutcome(batch=batch, matched=matched, queued=len(fresh), queued_before=queued_before)
