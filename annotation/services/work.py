"""The annotator workbench: members, batches, leases on queue items, labels and their audit."""

import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from .. import hot_path as sql
from ..bulk import refresh_planner_statistics
from ..labels import FINAL_LABEL_SOURCES, LabelError, check_label_submission
from ..models import (
    Annotation,
    Assignment,
    AssignmentBatch,
    AssignmentStatus,
    Membership,
    Project,
    ProjectRole,
    QueueItem,
    Sample,
)
from ..permissions import require_admin
from ..selectors import hazard_codes, open_items_plenty, open_items_plenty_bound, remaining_bound
from .adjudication import (
    FinalDecision,
    Vote,
    announce_final_label,
    decide_final_label,
    finalize_sample,
    open_review,
    votes_seen,
)


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


class _PullWouldWait(Exception):
    """A pull within a submission's transaction would have to wait (another pull of the annotator
    holds their membership, or the open items left are locked) or could not tell who is asking:
    it is made again on its own, once the submission has committed."""


def _membership_for_pull(user, project_id: int, now, *, in_submission: bool = False) -> Membership:
    """The annotator's membership, locked (one person's pulls, e.g. two tabs, take turns; no one
    else's), with its project, the id of the annotator's unexpired lease if any, their counts of
    submitted items and of remaining ones: one statement (and, once a second, the project's open
    items counted: selectors.open_items_plenty). ``in_submission``: not waiting for the lock
    (_PullWouldWait instead)."""
    plenty = open_items_plenty(project_id)
    params = {
        "project": project_id,
        "user": user.pk,
        "now": sql.when(now),
        "today": sql.day(timezone.localdate(now)),
        "bound": remaining_bound(),
        "plenty": open_items_plenty_bound(),
        "false": False,
    }
    row = sql.fetch_one(sql.membership_statement(in_submission=in_submission, plenty=plenty), params)
    if row is None and in_submission:
        raise _PullWouldWait
    if row is None:
        get_object_or_404(Project, pk=project_id)
        raise PermissionDenied(f"{user} is not annotator in this project")
    (pk, project_id, user_id, role, opted_out, cap, reminder, name, slug, guidelines, taxonomy_id) = row[:11]
    membership = Membership(
        pk=pk,
        project=Project(pk=project_id, name=name, slug=slug, guidelines=guidelines, taxonomy_id=taxonomy_id),
        user=user,
        role=role,
        opted_out_categories=sql.json_value(opted_out) or [],
        daily_cap=cap,
        break_reminder_minutes=reminder,
    )
    membership.current_lease, membership.submitted, membership.submitted_today, membership.remaining = row[11:15]
    if plenty and membership.remaining < params["bound"]:  # the annotator finished many open items: count
        membership.remaining = sql.fetch_one(sql.REMAINING, params)[0]
    return membership


MOST_TRIES = 20


@transaction.atomic
def pull_next_item(user, project_id: int) -> Pull:
    """The annotator's current lease, or a new one on the next item; raises NoWork.

    An item goes to at most k distinct annotators (submitted or holding an unexpired lease); an
    expired lease frees its place. The first open item in queue order is found and locked in one
    statement (SKIP LOCKED, so annotators never wait on each other); the lease is written only if
    the item's places, counted again in that statement (after the lock, so it sees every
    committed lease), are fewer than k. SQLite serialises writers instead.
    """
    return _pull(user, project_id)


def _pull(user, project_id: int, *, in_submission: bool = False) -> Pull:
    """pull_next_item within the caller's transaction; ``in_submission``: within a submission's,
    never waiting for a lock (it raises _PullWouldWait instead, see submit_and_pull_next)."""
    now = timezone.now()
    membership = _membership_for_pull(user, project_id, now, in_submission=in_submission)
    counts = {
        "membership": membership,
        "submitted": membership.submitted,
        "submitted_today": membership.submitted_today,
    }
    if membership.current_lease is not None:
        assignment = (
            Assignment.objects.select_related("sample__final_label")
            .annotate(imported=Exists(Annotation.objects.filter(sample=OuterRef("sample"), import_batch__isnull=False)))
            .get(pk=membership.current_lease)
        )
        assignment.sample.project = membership.project
        final = getattr(assignment.sample, "final_label", None)
        codes = None if assignment.imported else set(final.categories if final else [])
        return Pull(assignment, warning_codes=codes, **counts)
    if membership.daily_cap is not None and membership.submitted_today >= membership.daily_cap:
        raise NoWork(f"daily cap of {membership.daily_cap} items reached; thank you, see you tomorrow", membership)
    params = {"project": project_id, "user": user.pk, "now": sql.when(now), "false": False}
    opted_out = ""
    if membership.opted_out_categories:
        codes = {f"code{i}": code for i, code in enumerate(membership.opted_out_categories)}
        opted_out = sql.OPTED_OUT.format(", ".join(f"%({name})s" for name in codes))
        params.update(codes)
    tried: list[int] = []
    for _ in range(MOST_TRIES):
        skip = "AND q.id NOT IN ({})".format(", ".join(str(int(pk)) for pk in tried)) if tried else ""
        # Within a submission's transaction, not the annotator's own expired lease: renewing its row
        # could wait for another of their tabs submitting it.
        own_expired = "" if in_submission else sql.OWN_EXPIRED_LEASE_TAKEN_AGAIN
        candidate = sql.CANDIDATE.format(opted_out=opted_out, tried=skip, own_expired=own_expired)
        row = sql.fetch_one(sql.lock(candidate, "q", skip_locked=True), params)
        if row is None and connection.features.has_select_for_update:
            # The open items left may only be locked for a moment by others' pulls and submissions:
            # wait for the first of them rather than say that none is left.
            if in_submission:
                raise _PullWouldWait
            row = sql.fetch_one(sql.lock(candidate, "q"), params)
        if row is None:
            break
        item_id, sample_id, k, uid, turns, response, final_codes, imported = row
        lease = _lease(item_id, sample_id, project_id, k, user, now)
        if lease is None:
            tried.append(item_id)  # filled up between the read and the lock: take the next one
            continue
        sample = Sample(
            pk=sample_id, project=membership.project, uid=uid, turns=sql.json_value(turns), response=response
        )
        assignment = Assignment(
            pk=lease[0],
            item_id=item_id,
            sample=sample,
            project=membership.project,
            annotator=user,
            status=AssignmentStatus.LEASED,
            leased_at=now,
            lease_expires_at=now + lease_length(),
            flagged=bool(lease[1]),
        )
        codes = None if imported else set(sql.json_value(final_codes) or [])
        return Pull(assignment, warning_codes=codes, **counts)
    raise NoWork("no items left in your queue", membership)


def next_assignment(user, project: Project) -> Assignment:
    """The annotator's current lease, or a new one on the next item, with its whole sample; raises
    NoWork. (The API's pull reads only the sample fields the labelling page shows.)"""
    pulled = pull_next_item(user, project.pk).assignment
    return Assignment.objects.select_related("sample__project").get(pk=pulled.pk)


def _lease(item_id: int, sample_id: int, project_id: int, k: int, user, now) -> tuple[int, bool] | None:
    """A lease on the locked item (new, or the annotator's own expired one renewed) if fewer than
    k places are held, counted in the same statement; (assignment id, flagged) or None."""
    params = {
        "item": item_id,
        "sample": sample_id,
        "project": project_id,
        "user": user.pk,
        "now": sql.when(now),
        "expires": sql.when(now + lease_length()),
        "k": k,
        "false": False,
    }
    return sql.fetch_one(sql.LEASE, params)


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


OWN_FIELDS = ("prompt_label", "response_label", "categories", "other_risks", "comment")


@dataclass
class SubmitTarget:
    """The caller's assignment as a submission needs it (read and locked in one statement)."""

    id: int
    item_id: int
    sample_id: int
    annotator_id: int
    status: str
    lapsed: bool
    has_response: bool
    project_id: int
    taxonomy_id: int
    review_below_agreement: float
    final_source: str | None
    k: int
    own_id: int | None
    own: dict
    own_time_spent_ms: int | None


@dataclass
class Submission:
    """A stored label and the project it belongs to (where the annotator's next item comes from)."""

    annotation: Annotation
    project_id: int


def _assignment_for_submit(assignment_id: int, user, now) -> SubmitTarget:
    params = {"assignment": assignment_id, "now": sql.when(now)}
    row = sql.fetch_one(sql.lock(sql.ASSIGNMENT_FOR_SUBMIT, "a"), params)
    if row is None or row[3] != user.pk:
        raise PermissionDenied("not your assignment")
    own = dict(zip(OWN_FIELDS, row[13:18], strict=True))
    own["categories"] = sql.json_value(own["categories"])
    return SubmitTarget(*row[:5], bool(row[5]), bool(row[6]), *row[7:13], own=own, own_time_spent_ms=row[18])


@transaction.atomic
def submit_annotation(assignment_id: int, user, **label) -> Submission:
    """Stores (or revises) the annotator's label for their assignment, with an audit entry; ``label``:
    prompt_label, and optionally response_label, categories, other_risks, comment, time_spent_ms."""
    return _submit(assignment_id, user, **label)


def _submit(
    assignment_id: int,
    user,
    *,
    prompt_label: str | None,
    response_label: str | None = None,
    categories: list[str] | None = None,
    other_risks: str = "",
    comment: str = "",
    time_spent_ms: int | None = None,
) -> Submission:
    """submit_annotation within the caller's transaction."""
    now = timezone.now()
    target = _assignment_for_submit(assignment_id, user, now)
    if target.status == AssignmentStatus.SKIPPED:
        raise LabelError("assignment", "this item was skipped")
    if target.final_source in FINAL_LABEL_SOURCES:
        raise LabelError("assignment", "this sample is final; its labels can no longer change")
    if target.lapsed:
        QueueItem.objects.select_for_update().get(pk=target.item_id)  # as a pull would
        others = Assignment.objects.filter(_holds_slot(now), item_id=target.item_id).exclude(pk=target.id).count()
        if others >= target.k:
            raise LabelError("assignment", "your lease expired and the item went to someone else")
    prompt, response, codes = check_label_submission(
        has_response=target.has_response,
        hazard_codes=hazard_codes(target.taxonomy_id),
        prompt_label=prompt_label,
        response_label=response_label,
        categories=list(categories or []),
    )
    fields = {
        "prompt_label": prompt,
        "response_label": response,
        "categories": codes,
        "other_risks": other_risks.strip(),
        "comment": comment.strip(),
    }
    annotation, submitted_count, votes, decided = _write_submission(target, user, now, fields, time_spent_ms)
    if decided:
        announce_final_label(target.sample_id, target.project_id)
    elif submitted_count is not None and submitted_count >= target.k:
        project = Project(pk=target.project_id, review_below_agreement=target.review_below_agreement)
        finalize_sample(target.sample_id, project=project, has_response=target.has_response, votes=votes)
    return Submission(annotation, target.project_id)


def _write_submission(
    target: SubmitTarget, user, now, fields: dict, time_spent_ms: int | None
) -> tuple[Annotation, int | None, list[Vote] | None, bool]:
    """Writes the label (new or revised), its audit entry and the categories it names; on a first
    submission also marks the assignment submitted and counts it on its item (done once k are in)
    and on the annotator's tally; on PostgreSQL, where k = 1, also the final label this vote alone
    decides if it is the sample's only one (hot_path.SINGLE_VOTE_FINAL).
    Returns the label, the item's count of submissions (None on a revision), with the k-th
    submission the sample's votes if the statement saw every submission (else None: read them
    again), and whether the statement wrote the final label. One statement on PostgreSQL, one per
    write on SQLite."""
    spent = target.own_time_spent_ms
    if time_spent_ms is not None:
        spent = (spent or 0) + max(0, int(time_spent_ms))
    new = target.own_id is None
    annotation = Annotation(
        pk=target.own_id, sample_id=target.sample_id, annotator=user, time_spent_ms=spent, updated_at=now, **fields
    )
    count = target.status != AssignmentStatus.SUBMITTED
    codes = fields["categories"]
    votes = None
    params = {
        **fields,
        "categories": sql.json_param(codes),
        "sample": target.sample_id,
        "user": user.pk,
        "own": target.own_id,
        "spent": spent,
        "now": sql.when(now),
        "old": None if new else sql.json_param(target.own),
        "new": sql.json_param(annotation_snapshot(annotation)),
        "k": target.k,
        "item": target.item_id,
        "assignment": target.id,
        "project": target.project_id,
        "day": sql.day(timezone.localdate(now)),
        **{f"code{i}": code for i, code in enumerate(codes)},
    }
    decided = False
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            own = Vote(fields["prompt_label"], fields["response_label"], codes)
            single = _single_vote_decision(target, own) if count and new else None
            if single is not None:
                params.update(single.params())
            statement = sql.submission_statement(
                new=new, categories=len(codes), count=count, single_vote_final=single is not None
            )
            cursor.execute(statement, params)
            annotation.pk, submitted_count, seen, rows, decided = cursor.fetchone()
            if not decided and seen is not None and seen + 1 == submitted_count:
                votes = votes_seen(sql.json_value(rows), own, own_is_new=new)
        else:
            cursor.execute(sql.INSERT_ANNOTATION if new else sql.UPDATE_ANNOTATION, params)
            annotation.pk = cursor.fetchone()[0]
            cursor.execute(sql.INSERT_REVISION.format(annotation=annotation.pk, source=""), params)
            if codes:
                cursor.execute(sql.INSERT_CATEGORIES.format(rows=sql.category_rows(len(codes))), params)
            submitted_count = None
            if count:
                cursor.execute(sql.MARK_SUBMITTED.format(item_done=""), params)
                cursor.execute(sql.TALLY_SUBMISSION, params)
                cursor.execute(sql.COUNT_SUBMISSION, params)
                submitted_count, done = cursor.fetchone()
                if done:
                    cursor.execute(sql.ITEM_DONE, params)
    return annotation, submitted_count, votes, bool(decided)


def _single_vote_decision(target: SubmitTarget, own: Vote) -> FinalDecision | None:
    """Where k = 1, the final label the caller's vote decides on its own (None: a reviewer would)."""
    if target.k != 1:
        return None
    decision = decide_final_label([own], has_response=target.has_response, threshold=target.review_below_agreement)
    return None if isinstance(decision, str) else decision


def submit_and_pull_next(assignment_id: int, user, **label) -> tuple[Submission, Pull | NoWork]:
    """submit_annotation, then the annotator's next item (or why there is none), in one
    transaction where the pull need not wait for anyone; else the pull runs on its own once the
    label is committed. Either way the label is stored whatever the pull finds.

    The submission's locks (its item, assignment, tally and final label) are then held through the
    pull: others' pulls pass over that item for that moment, as they pass over any item being
    pulled, and wait for it only when no other is left. The pull takes no lock it would have to
    wait for (membership and items SKIP LOCKED; not the annotator's own expired lease, whose row
    another of their tabs may hold), so it adds no wait that could close a cycle with them.
    """
    with transaction.atomic():
        submission = _submit(assignment_id, user, **label)
        try:
            return submission, _pull(user, submission.project_id, in_submission=True)
        except NoWork as reason:  # the daily cap: nothing to wait for
            return submission, reason
        except _PullWouldWait:
            pass
    try:
        return submission, pull_next_item(user, submission.project_id)
    except NoWork as reason:
        return submission, reason


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
