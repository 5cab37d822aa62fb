"""The annotator workbench: members, batches, leases on queue items, labels and their audit."""

import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Count, Exists, F, FilteredRelation, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
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
from ..selectors import hazard_codes, start_of_today
from .adjudication import finalize_sample, open_review


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


def _count(queryset) -> Coalesce:
    """``SELECT COUNT(*)`` of a queryset, as a scalar subquery (0 when empty)."""
    counted = queryset.order_by().annotate(one=Value(1)).values("one").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted), 0)


def submitted_today(user, project: Project) -> int:
    return Assignment.objects.filter(
        annotator=user, sample__project=project, status=AssignmentStatus.SUBMITTED, submitted_at__gte=start_of_today()
    ).count()


@dataclass
class Pull:
    """What a pull found: the lease, and what the labelling page shows beside it (read in the same queries)."""

    assignment: Assignment
    membership: Membership
    submitted: int
    submitted_today: int
    warning_codes: set[str] | None  # None: the sample has imported annotations, whose categories must be read


class NoWork(Exception):
    """Why an annotator gets no next item (queue empty, daily cap reached)."""

    def __init__(self, reason: str, membership: Membership | None = None):
        super().__init__(reason)
        self.membership = membership


def _membership_for_pull(user, project_id: int, now) -> Membership:
    """The annotator's membership, locked (one person's pulls, e.g. two tabs, take turns; no one
    else's), with its project, the id of the annotator's unexpired lease if any, and their counts
    of submitted items: one query."""
    mine = Assignment.objects.filter(annotator=user, sample__project_id=project_id)
    submitted = mine.filter(status=AssignmentStatus.SUBMITTED)
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(project_id=project_id, user=user, role=ProjectRole.ANNOTATOR)
        .annotate(
            current_lease=Subquery(
                mine.filter(_not_final(), status=AssignmentStatus.LEASED, lease_expires_at__gt=now)
                .order_by("leased_at")
                .values("pk")[:1]
            ),
            submitted=_count(submitted),
            submitted_today=_count(submitted.filter(submitted_at__gte=start_of_today())),
        )
        .first()
    )
    if membership is None:
        get_object_or_404(Project, pk=project_id)
        raise PermissionDenied(f"{user} is not annotator in this project")
    return membership


def _open_candidates(project_id: int, user, membership: Membership, now):
    """Queue items this annotator may take, in queue order (batch, priority, id): in an active
    batch, not done, sample not final, fewer than k places held, not had (or skipped) by this
    annotator (their own expired lease excepted), no category they opted out of."""
    held = Assignment.objects.filter(_holds_slot(now), item=OuterRef("pk"))
    had = Assignment.objects.filter(item=OuterRef("pk"), annotator=user).exclude(
        status=AssignmentStatus.LEASED, lease_expires_at__lte=now
    )
    items = (
        QueueItem.objects.filter(_not_final(), batch__project_id=project_id, batch__active=True, done=False)
        .annotate(places=_count(held))
        .filter(places__lt=F("batch__annotations_per_sample"))
        .exclude(Exists(had))
    )
    if membership.opted_out_categories:
        avoided = SampleCategory.objects.filter(sample=OuterRef("sample"), code__in=membership.opted_out_categories)
        items = items.exclude(Exists(avoided))
    return items.order_by("batch_id", "-priority", "pk")


SAMPLE_FIELDS = ("sample__uid", "sample__turns", "sample__response", "sample__final_label__categories")
MOST_TRIES = 20


@transaction.atomic
def pull_next_item(user, project_id: int) -> Pull:
    """The annotator's current lease, or a new one on the next item; raises NoWork.

    An item goes to at most k distinct annotators (submitted or holding an unexpired lease); an
    expired lease frees its place. The first open item in queue order is found and locked in one
    query (SKIP LOCKED, so annotators never wait on each other); the lease is written only if the
    item's places, counted again in that statement (after the lock, so it sees every committed
    lease), are fewer than k. SQLite serialises writers instead.
    """
    now = timezone.now()
    membership = _membership_for_pull(user, project_id, now)
    counts = {"membership": membership, "submitted": membership.submitted, "submitted_today": membership.submitted_today}
    if membership.current_lease is not None:
        assignment = (
            Assignment.objects.select_related("sample__project", "sample__final_label")
            .annotate(imported=_imported_labels())
            .get(pk=membership.current_lease)
        )
        return Pull(assignment, warning_codes=_warning_codes(assignment.sample, assignment.imported), **counts)
    if membership.daily_cap is not None and membership.submitted_today >= membership.daily_cap:
        raise NoWork(f"daily cap of {membership.daily_cap} items reached; thank you, see you tomorrow", membership)
    candidates = _open_candidates(project_id, user, membership, now).select_for_update(of=("self",), skip_locked=True)
    tried: list[int] = []
    for _ in range(MOST_TRIES):
        found = (
            candidates.exclude(pk__in=tried)
            .annotate(imported=_imported_labels("sample"))
            .values_list("pk", "sample_id", "batch__annotations_per_sample", "imported", *SAMPLE_FIELDS)[:1]
        )
        row = next(iter(found), None)
        if row is None:
            break
        item_id, sample_id, k, imported, uid, turns, response, final_codes = row
        lease = _lease(item_id, sample_id, k, user, now)
        if lease is not None:
            sample = Sample(
                pk=sample_id, project=membership.project, uid=uid, turns=turns, response=response
            )
            assignment_id, flagged = lease
            assignment = Assignment(
                pk=assignment_id,
                item_id=item_id,
                sample=sample,
                annotator=user,
                status=AssignmentStatus.LEASED,
                leased_at=now,
                lease_expires_at=now + lease_length(),
                flagged=bool(flagged),
            )
            codes = None if imported else set(final_codes or [])
            return Pull(assignment, warning_codes=codes, **counts)
        tried.append(item_id)  # filled up between the read and the lock: take the next one
    raise NoWork("no items left in your queue", membership)


def _imported_labels(sample: str = "sample") -> Exists:
    return Exists(Annotation.objects.filter(sample=OuterRef(sample), import_batch__isnull=False))


def _warning_codes(sample: Sample, imported: bool) -> set[str] | None:
    final = getattr(sample, "final_label", None)
    return None if imported else set(final.categories if final else [])


def next_assignment(user, project: Project) -> Assignment:
    """The annotator's current lease, or a new one on the next item; raises NoWork."""
    return pull_next_item(user, project.pk).assignment


LEASE_SQL = """
INSERT INTO annotation_assignment
    (item_id, sample_id, annotator_id, status, leased_at, lease_expires_at, skip_reason, flagged, flag_reason)
SELECT %(item)s, %(sample)s, %(annotator)s, 'leased', %(now)s, %(expires)s, '', %(false)s, ''
WHERE (
    SELECT COUNT(*) FROM annotation_assignment
    WHERE item_id = %(item)s AND (status = 'submitted' OR (status = 'leased' AND lease_expires_at > %(now)s))
) < %(k)s
ON CONFLICT (sample_id, annotator_id) DO UPDATE
    SET item_id = excluded.item_id, status = excluded.status,
        leased_at = excluded.leased_at, lease_expires_at = excluded.lease_expires_at
    WHERE annotation_assignment.status = 'leased'
RETURNING id, flagged
"""


def _lease(item_id: int, sample_id: int, k: int, user, now) -> tuple[int, bool] | None:
    """A lease on the locked item (new, or the annotator's own expired one renewed) if fewer than
    k places are held, counted in the same statement; (assignment id, flagged) or None."""
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            LEASE_SQL,
            {
                "item": item_id,
                "sample": sample_id,
                "annotator": user.pk,
                "now": adapt(now),
                "expires": adapt(now + lease_length()),
                "k": k,
                "false": False,
            },
        )
        return cursor.fetchone()


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


OWN_FIELDS = ("id", "prompt_label", "response_label", "categories", "other_risks", "comment", "time_spent_ms", "created_at")


def _assignment_for_submit(assignment_id: int, user) -> Assignment:
    """The caller's assignment, locked, with its sample, project, final label, batch and the
    caller's own annotation of the sample (``own_*``): one query."""
    own = FilteredRelation("sample__annotations", condition=Q(sample__annotations__annotator=user.pk))
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("sample__project", "sample__final_label", "item__batch")
        .annotate(own=own, **{f"own_{name}": F(f"own__{name}") for name in OWN_FIELDS})
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None or assignment.annotator_id != user.pk:
        raise PermissionDenied("not your assignment")
    return assignment


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
    assignment = _assignment_for_submit(assignment_id, user)
    sample = assignment.sample
    if assignment.status == AssignmentStatus.SKIPPED:
        raise LabelError("assignment", "this item was skipped")
    final = getattr(sample, "final_label", None)
    if final is not None and final.prompt_label_source in FINAL_LABEL_SOURCES:
        raise LabelError("assignment", "this sample is final; its labels can no longer change")
    now = timezone.now()
    k = assignment.item.batch.annotations_per_sample
    if assignment.status == AssignmentStatus.LEASED and assignment.lease_expires_at <= now:
        QueueItem.objects.select_for_update().get(pk=assignment.item_id)  # as a pull would
        others = assignment.item.assignments.filter(_holds_slot(now)).exclude(pk=assignment.pk).count()
        if others >= k:
            raise LabelError("assignment", "your lease expired and the item went to someone else")
    prompt, response, codes = check_label_submission(
        has_response=sample.response is not None,
        hazard_codes=hazard_codes(sample.project.taxonomy_id),
        prompt_label=prompt_label,
        response_label=response_label,
        categories=list(categories or []),
    )
    annotation = _store_annotation(assignment, user, now, prompt, response, codes, other_risks, comment, time_spent_ms)
    if codes:
        SampleCategory.objects.bulk_create(
            [SampleCategory(sample=sample, code=code) for code in codes], ignore_conflicts=True
        )
    if assignment.status != AssignmentStatus.SUBMITTED:
        if _record_submission(assignment.pk, assignment.item_id, k, now) >= k:
            finalize_sample(sample)
    return annotation


def _store_annotation(
    assignment: Assignment, user, now, prompt, response, codes, other_risks, comment, time_spent_ms
) -> Annotation:
    """Writes the label (new or revised) and its audit entry."""
    old = None
    fields = {
        "prompt_label": prompt,
        "response_label": response,
        "categories": codes,
        "other_risks": other_risks.strip(),
        "comment": comment.strip(),
    }
    spent = assignment.own_time_spent_ms
    if time_spent_ms is not None:
        spent = (spent or 0) + max(0, int(time_spent_ms))
    if assignment.own_id is None:
        annotation = Annotation.objects.create(
            sample=assignment.sample, annotator=user, time_spent_ms=spent, **fields
        )
    else:
        old = {name: getattr(assignment, f"own_{name}") for name in fields}
        Annotation.objects.filter(pk=assignment.own_id).update(time_spent_ms=spent, updated_at=now, **fields)
        annotation = Annotation(
            pk=assignment.own_id,
            sample=assignment.sample,
            annotator=user,
            time_spent_ms=spent,
            created_at=assignment.own_created_at,
            updated_at=now,
            **fields,
        )
    AnnotationRevision.objects.create(annotation=annotation, changed_by=user, old=old, new=annotation_snapshot(annotation))
    return annotation


RECORD_SUBMISSION_SQL = """
UPDATE annotation_queueitem
SET submitted_count = submitted_count + 1, done = (done OR submitted_count + 1 >= %(k)s)
WHERE id = %(item)s
RETURNING submitted_count
"""


def _record_submission(assignment_id: int, item_id: int, k: int, now) -> int:
    """Marks the assignment submitted and counts it on its item (done once k are in); returns the
    item's count of submissions. The count is one atomic UPDATE of the item's row, so two last
    submissions cannot both miss each other; on PostgreSQL both writes are one statement."""
    params = {
        "k": k,
        "item": item_id,
        "assignment": assignment_id,
        "now": connection.ops.adapt_datetimefield_value(now),
        "submitted": AssignmentStatus.SUBMITTED,
    }
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "WITH submitted AS (UPDATE annotation_assignment SET status = %(submitted)s, submitted_at = %(now)s"
                " WHERE id = %(assignment)s)" + RECORD_SUBMISSION_SQL,
                params,
            )
        else:
            Assignment.objects.filter(pk=assignment_id).update(status=AssignmentStatus.SUBMITTED, submitted_at=now)
            cursor.execute(RECORD_SUBMISSION_SQL, params)
        return cursor.fetchone()[0]


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
