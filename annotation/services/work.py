"""The annotator workbench: members, batches, leases on queue items, labels and their audit."""

import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..bulk import refresh_planner_statistics
from ..labels import FINAL_LABEL_SOURCES, LabelError, check_label_submission
from ..models import (
    Annotation,
    AnnotationRevision,
    Assignment,
    AssignmentBatch,
    AssignmentStatus,
    FinalLabel,
    Membership,
    Project,
    ProjectRole,
    QueueItem,
    Sample,
    SampleCategory,
)
from ..permissions import require_admin
from .adjudication import finalize_sample, open_review


class NoWork(Exception):
    """Why an annotator gets no next item (queue empty, daily cap reached)."""


def lease_length() -> timedelta:
    return timedelta(minutes=settings.AEGIS_LEASE_MINUTES)


@transaction.atomic
def add_member(
    project: Project,
    *,
    by,
    username: str,
    role: str,
    opted_out_categories: list[str] | None = None,
    daily_cap: int | None = None,
    break_reminder_minutes: int | None = None,
) -> Membership:
    """Adds (or updates) a person's role in a project; only project admins may."""
    require_admin(by, project)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise LabelError("username", f"no active account {username!r}")
    codes = list(opted_out_categories or [])
    known = set(project.taxonomy.categories.filter(hazard=True).values_list("code", flat=True))
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise LabelError("opted_out_categories", f"not categories of this project: {', '.join(unknown)}")
    membership, _ = Membership.objects.update_or_create(
        project=project,
        user=user,
        role=ProjectRole(role),
        defaults={
            "opted_out_categories": codes,
            "daily_cap": daily_cap,
            "break_reminder_minutes": break_reminder_minutes,
        },
    )
    return membership


@transaction.atomic
def create_assignment_batch(
    project: Project,
    *,
    by,
    name: str,
    sources: list[str] | None = None,
    sample_ids: list[int] | None = None,
    limit: int | None = None,
) -> AssignmentBatch:
    """Queues samples not queued before (optionally of some sources, ids, or the first N)."""
    require_admin(by, project)
    samples = Sample.objects.filter(project=project).exclude(queue_items__isnull=False).order_by("pk")
    if sources:
        samples = samples.filter(source_name__in=sources)
    if sample_ids is not None:
        samples = samples.filter(pk__in=sample_ids)
    ids = list(samples.values_list("pk", flat=True)[:limit] if limit else samples.values_list("pk", flat=True))
    if not ids:
        raise LabelError("samples", "no samples left to queue with these filters")
    batch = AssignmentBatch.objects.create(
        project=project, name=name, annotations_per_sample=project.annotations_per_sample, created_by=by
    )
    QueueItem.objects.bulk_create((QueueItem(batch=batch, sample_id=pk) for pk in ids), batch_size=5000)
    refresh_planner_statistics(QueueItem)
    return batch


@transaction.atomic
def interleave_sources(batch: AssignmentBatch, *, seed: str = "aegis") -> None:
    """Serves a batch's sources in turn, each in a seeded shuffle, so that annotators see a mix
    (prompt-only and prompt+response items, every harm area) from the first items on.

    The queue is served by priority, highest first: the n-th item of each source gets priority -n.
    """
    by_source: dict[str, list[QueueItem]] = {}
    for item in batch.items.select_related("sample").order_by("pk"):
        by_source.setdefault(item.sample.source_name, []).append(item)
    shuffle = random.Random(f"{seed}:{batch.name}").shuffle
    changed = []
    for items in by_source.values():
        shuffle(items)
        for rank, item in enumerate(items):
            item.priority = -rank
            changed.append(item)
    QueueItem.objects.bulk_update(changed, ["priority"], batch_size=2000)


def _holds_slot(now) -> Q:
    """Assignments that occupy one of an item's k places: submitted, or leased and unexpired."""
    return Q(status=AssignmentStatus.SUBMITTED) | Q(status=AssignmentStatus.LEASED, lease_expires_at__gt=now)


def _not_final() -> Q:
    """Samples whose final label humans or a reviewer have not yet decided (those are never handed out)."""
    return ~Q(sample__final_label__prompt_label_source__in=FINAL_LABEL_SOURCES)


def _active_lease(user, project: Project, now) -> Assignment | None:
    return (
        Assignment.objects.filter(
            _not_final(),
            annotator=user,
            sample__project=project,
            status=AssignmentStatus.LEASED,
            lease_expires_at__gt=now,
        )
        .select_related("sample__project")
        .order_by("leased_at")
        .first()
    )


def submitted_today(user, project: Project) -> int:
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Assignment.objects.filter(
        annotator=user, sample__project=project, status=AssignmentStatus.SUBMITTED, submitted_at__gte=start
    ).count()


CANDIDATE_WINDOW = 50


@transaction.atomic
def next_assignment(user, project: Project) -> Assignment:
    """The annotator's current lease, or a new one on the next item; raises NoWork.

    An item goes to at most k distinct annotators (submitted or holding an unexpired lease);
    an expired lease frees its place. Candidates are read a window at a time in queue order
    (batch, priority, id); the chosen item is locked (SKIP LOCKED, so annotators never wait on
    each other) and its places counted again under the lock before the lease is written, so
    concurrent pulls never over-assign. SQLite serialises writers instead.
    """
    # Locking the membership row serialises one person's pulls (two tabs), no one else's.
    membership = (
        Membership.objects.select_for_update().filter(project=project, user=user, role=ProjectRole.ANNOTATOR).first()
    )
    if membership is None or not user.is_active:
        raise PermissionDenied(f"{user} is not annotator in project {project.slug!r}")
    now = timezone.now()
    current = _active_lease(user, project, now)
    if current is not None:
        return current
    if membership.daily_cap is not None and submitted_today(user, project) >= membership.daily_cap:
        raise NoWork(f"daily cap of {membership.daily_cap} items reached; thank you, see you tomorrow")
    for batch in AssignmentBatch.objects.filter(project=project, active=True).order_by("pk"):
        start = 0
        while True:
            window = list(
                QueueItem.objects.filter(_not_final(), batch=batch, done=False)
                .order_by("-priority", "pk")
                .values_list("pk", "sample_id")[start : start + CANDIDATE_WINDOW]
            )
            if not window:
                break
            found = _lock_first_open(window, batch.annotations_per_sample, user, membership, now)
            if found is not None:
                return _lease(*found, user, now)
            start += CANDIDATE_WINDOW
    raise NoWork("no items left in your queue")


def _lock_first_open(
    window: list[tuple[int, int]], k: int, user, membership: Membership, now
) -> tuple[QueueItem, bool] | None:
    """The first item of the window this annotator may take, locked, and whether the annotator
    holds an expired lease on it; None if there is none."""
    item_ids = [pk for pk, _ in window]
    sample_ids = [sample for _, sample in window]
    # One read of the window's assignments: places taken per item, and the annotator's own.
    taken: dict[int, int] = {}
    mine, expired = set(), set()
    for item_id, annotator_id, status, expires in Assignment.objects.filter(item_id__in=item_ids).values_list(
        "item_id", "annotator_id", "status", "lease_expires_at"
    ):
        lapsed = status == AssignmentStatus.LEASED and expires <= now
        if status == AssignmentStatus.SUBMITTED or (status == AssignmentStatus.LEASED and not lapsed):
            taken[item_id] = taken.get(item_id, 0) + 1
        if annotator_id == user.pk:
            (expired if lapsed else mine).add(item_id)
    avoided = set()
    if membership.opted_out_categories:
        avoided = set(
            SampleCategory.objects.filter(
                sample_id__in=sample_ids, code__in=membership.opted_out_categories
            ).values_list("sample_id", flat=True)
        )
    for item_id, sample_id in window:
        if taken.get(item_id, 0) >= k or item_id in mine or sample_id in avoided:
            continue
        item = QueueItem.objects.select_for_update(skip_locked=True).filter(pk=item_id, done=False).first()
        if item is None:
            continue  # another annotator is taking it right now
        # Counted again under the lock: every lease on this item is written while holding it.
        if Assignment.objects.filter(_holds_slot(now), item=item).count() < k:
            return item, item_id in expired
    return None


def _lease(item: QueueItem, renew: bool, user, now) -> Assignment:
    """A lease on the item: a new assignment, or the annotator's own expired one renewed."""
    lease = {
        "item": item,
        "status": AssignmentStatus.LEASED,
        "leased_at": now,
        "lease_expires_at": now + lease_length(),
    }
    if not renew:
        return Assignment.objects.create(sample_id=item.sample_id, annotator=user, **lease)
    Assignment.objects.filter(sample_id=item.sample_id, annotator=user).update(**lease)
    return Assignment.objects.select_related("sample__project").get(sample_id=item.sample_id, annotator=user)


def _own_assignment(assignment_id: int, user) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("sample__project__taxonomy", "item__batch")
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or assignment.annotator_id != user.pk:
        raise PermissionDenied("not your assignment")
    return assignment


def annotation_snapshot(annotation: Annotation) -> dict:
    return {
        "prompt_label": annotation.prompt_label,
        "response_label": annotation.response_label,
        "categories": annotation.categories,
        "other_risks": annotation.other_risks,
        "comment": annotation.comment,
    }


def is_finalised(sample: Sample) -> bool:
    return FinalLabel.objects.filter(sample=sample, prompt_label_source__in=FINAL_LABEL_SOURCES).exists()


@transaction.atomic
def submit_annotation(
    assignment_id: int,
    user,
    *,
    prompt_label: str | None,
    response_label: str | None = None,
    categories: list[str] | None = None,
    other_risks: str = "",
    comment: str = "",
    time_spent_ms: int | None = None,
) -> Annotation:
    """Stores (or revises) the annotator's label for their assignment, with an audit entry."""
    assignment = _own_assignment(assignment_id, user)
    sample = assignment.sample
    if assignment.status == AssignmentStatus.SKIPPED:
        raise LabelError("assignment", "this item was skipped")
    if is_finalised(sample):
        raise LabelError("assignment", "this sample is final; its labels can no longer change")
    now = timezone.now()
    if assignment.status == AssignmentStatus.LEASED and assignment.lease_expires_at <= now:
        QueueItem.objects.select_for_update().get(pk=assignment.item_id)  # as a pull would
        others = assignment.item.assignments.filter(_holds_slot(now)).exclude(pk=assignment.pk).count()
        if others >= assignment.item.batch.annotations_per_sample:
            raise LabelError("assignment", "your lease expired and the item went to someone else")
    taxonomy = sample.project.taxonomy
    prompt, response, codes = check_label_submission(
        has_response=sample.response is not None,
        hazard_codes=list(taxonomy.categories.filter(hazard=True).values_list("code", flat=True)),
        prompt_label=prompt_label,
        response_label=response_label,
        categories=list(categories or []),
    )
    annotation = Annotation.objects.filter(sample=sample, annotator=user).first()
    old = annotation_snapshot(annotation) if annotation else None
    if annotation is None:
        annotation = Annotation(sample=sample, annotator=user)
    annotation.prompt_label, annotation.response_label, annotation.categories = prompt, response, codes
    annotation.other_risks, annotation.comment = other_risks.strip(), comment.strip()
    if time_spent_ms is not None:
        annotation.time_spent_ms = (annotation.time_spent_ms or 0) + max(0, int(time_spent_ms))
    annotation.save()
    AnnotationRevision.objects.create(
        annotation=annotation, changed_by=user, old=old, new=annotation_snapshot(annotation)
    )
    SampleCategory.objects.bulk_create(
        [SampleCategory(sample=sample, code=code) for code in codes], ignore_conflicts=True
    )
    if assignment.status != AssignmentStatus.SUBMITTED:
        assignment.status, assignment.submitted_at = AssignmentStatus.SUBMITTED, now
        assignment.save(update_fields=["status", "submitted_at"])
        # Lock the item so that two last submissions cannot both miss each other's count.
        item = QueueItem.objects.select_for_update().get(pk=assignment.item_id)
        submitted = item.assignments.filter(status=AssignmentStatus.SUBMITTED).count()
        if submitted >= assignment.item.batch.annotations_per_sample:
            QueueItem.objects.filter(pk=item.pk).update(done=True)
            finalize_sample(sample)
    return annotation


@transaction.atomic
def skip_assignment(assignment_id: int, user, *, reason: str) -> Assignment:
    """Gives the item back (to others, never again to this annotator), with a reason."""
    assignment = _own_assignment(assignment_id, user)
    if not reason.strip():
        raise LabelError("reason", "say why you skip this item")
    if assignment.status != AssignmentStatus.LEASED:
        raise LabelError("assignment", f"only a leased item can be skipped (this one is {assignment.status})")
    assignment.status, assignment.skip_reason = AssignmentStatus.SKIPPED, reason.strip()
    assignment.save(update_fields=["status", "skip_reason"])
    return assignment


@transaction.atomic
def flag_assignment(assignment_id: int, user, *, reason: str) -> Assignment:
    """Marks the item for a reviewer's attention; labelling can go on."""
    assignment = _own_assignment(assignment_id, user)
    if not reason.strip():
        raise LabelError("reason", "say what a reviewer should look at")
    assignment.flagged, assignment.flag_reason = True, reason.strip()
    assignment.save(update_fields=["flagged", "flag_reason"])
    open_review(assignment.sample, f"flagged by {user}: {reason.strip()}")
    return assignment
