"""Reads of the annotation app."""

import functools
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from core.remembered import Remembered
from taxonomy.models import Category

from . import hot_path
from .exporting import CATEGORY_SEPARATOR, EXPORT_COLUMNS, ExportError
from .labels import FINAL_LABEL_SOURCES, SafetyLabel, apply_needs_caution_policy
from .models import (
    Annotation,
    AnnotationRevision,
    AnnotatorTally,
    Assignment,
    AssignmentStatus,
    ExportSnapshot,
    FinalLabel,
    ImportBatch,
    Membership,
    Project,
    ProjectRole,
    QueueItem,
    Sample,
)
from .release import SOURCE_SPLIT_KEY

EXPORT_FILTERS = ("sources", "label_sources")


def project_samples(project: Project) -> QuerySet[Sample]:
    return Sample.objects.filter(project=project).select_related("final_label").order_by("pk")


def project_imports(project: Project) -> QuerySet[ImportBatch]:
    return ImportBatch.objects.filter(project=project)


def project_exports(project: Project) -> QuerySet[ExportSnapshot]:
    return ExportSnapshot.objects.filter(project=project)


def check_export_filters(filters: dict[str, Any]) -> dict[str, list[str]]:
    unknown = set(filters) - set(EXPORT_FILTERS)
    if unknown:
        raise ExportError(f"unknown export filters {sorted(unknown)}: use {', '.join(EXPORT_FILTERS)}")
    checked = {}
    for key in EXPORT_FILTERS:
        if filters.get(key):
            value = filters[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ExportError(f"export filter {key!r} must be a list of strings")
            checked[key] = sorted(value)
    return checked


def export_rows(
    project: Project, filters: dict[str, list[str]], *, labelled_only: bool = True, with_source_split: bool = False
) -> Iterator[Any]:
    """Rows in the Aegis 2.0 release columns, in storage order, streamed from the database.

    Needs Caution follows the project's policy; categories are written only for unsafe rows.
    ``labelled_only=False`` adds the samples without a final label (labels null); ``with_source_split``
    yields ``(row, split recorded at import or None)`` pairs.
    """
    names = {c.code: c.name for c in project.taxonomy.categories.all()}
    policy = project.needs_caution_policy
    queryset = Sample.objects.filter(project=project)
    if labelled_only:
        queryset = queryset.filter(final_label__isnull=False)
    if filters.get("sources"):
        queryset = queryset.filter(source_name__in=filters["sources"])
    if filters.get("label_sources"):
        queryset = queryset.filter(
            Q(final_label__prompt_label_source__in=filters["label_sources"])
            | Q(final_label__response_label_source__in=filters["label_sources"])
        )
    values = queryset.order_by("pk").values_list(
        "uid",
        "prompt",
        "response",
        "final_label__prompt_label",
        "final_label__response_label",
        "final_label__prompt_label_source",
        "final_label__response_label_source",
        "final_label__categories",
        "reconstruction_id",
        *((f"metadata__{SOURCE_SPLIT_KEY}",) if with_source_split else ()),
    )
    unsafe = SafetyLabel.UNSAFE.value
    for uid, prompt, response, p_label, r_label, p_source, r_source, codes, reconstruction, *split in values.iterator(
        chunk_size=2000
    ):
        p_label = apply_needs_caution_policy(p_label, policy)
        r_label = apply_needs_caution_policy(r_label, policy)
        violated = CATEGORY_SEPARATOR.join(names[c] for c in codes) if unsafe in (p_label, r_label) else ""
        row = dict(
            zip(
                EXPORT_COLUMNS,
                (uid, prompt, response, p_label, r_label, p_source, r_source, violated, reconstruction),
            )
        )
        yield (row, split[0]) if with_source_split else row


def member_projects(user) -> QuerySet[Project]:
    """Projects a person belongs to (staff: all)."""
    projects = Project.objects.select_related("taxonomy").order_by("name", "pk")
    return projects if user.is_staff else projects.filter(memberships__user=user).distinct()


def user_projects(user) -> QuerySet[Project]:
    """Projects a person belongs to (staff: all), with their samples and labelled samples counted:
    a pass over every sample of each, so only for pages that show the counts."""
    return member_projects(user).annotate(
        sample_count=Count("samples", distinct=True),
        labelled_count=Count("samples__final_label", distinct=True),
    )


def administered_projects(user) -> QuerySet[Project]:
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user, memberships__role=ProjectRole.ADMIN)


@functools.lru_cache(maxsize=64)
def _frozen_taxonomy_facts(taxonomy_id: int) -> tuple[tuple[dict[str, Any], ...], dict[str, str]]:
    """Hazard choices and content-warning names of a taxonomy that a project uses.

    Cached per process: a taxonomy freezes when a project takes it and never changes after.
    """
    categories = Category.objects.filter(taxonomy_id=taxonomy_id).order_by("position")
    choices = tuple(
        {"code": c.code, "name": c.name, "kind": c.kind, "definition": c.definition} for c in categories if c.hazard
    )
    return choices, {c.code: c.name for c in categories if c.content_warning}


def content_warning_reasons(sample: Sample, known_codes: set[str] | None = None) -> list[str]:
    """Names of the content-warning categories a sample is known to touch.

    Known only from what no annotator of the project wrote: the final label (imported, jury,
    majority or reviewer) and imported annotations. Peers' open labels never count: they would
    tell a blind annotator what the others chose. ``known_codes``: those codes, already read.
    """
    warned = _frozen_taxonomy_facts(sample.project.taxonomy_id)[1]
    codes: set[str] = known_codes if known_codes is not None else set()
    if known_codes is None:
        for categories in FinalLabel.objects.filter(sample=sample).values_list("categories", flat=True):
            codes.update(categories)
        for categories in Annotation.objects.filter(sample=sample, import_batch__isnull=False).values_list(
            "categories", flat=True
        ):
            codes.update(categories)
    return sorted(warned[code] for code in codes if code in warned)


def hazard_codes(taxonomy_id: int) -> list[str]:
    return [choice["code"] for choice in _frozen_taxonomy_facts(taxonomy_id)[0]]


def taxonomy_choices(project: Project) -> list[dict[str, Any]]:
    return list(_frozen_taxonomy_facts(project.taxonomy_id)[0])


def own_annotation(sample: Sample, annotator_id: int) -> dict[str, Any] | None:
    own = Annotation.objects.filter(sample=sample, annotator_id=annotator_id).first()
    if own is None:
        return None
    return {
        "prompt_label": own.prompt_label,
        "response_label": own.response_label,
        "categories": own.categories,
        "other_risks": own.other_risks,
        "comment": own.comment,
    }


def workbench_view(assignment: Assignment, membership: Membership | None = None) -> dict[str, Any]:
    """What the labelling page shows for one assignment: the sample, never others' labels."""
    sample = assignment.sample
    project = sample.project
    if membership is None:
        membership = Membership.objects.filter(
            project=project, user_id=assignment.annotator_id, role=ProjectRole.ANNOTATOR
        ).first()
    return _labelling_view(
        assignment,
        membership,
        warnings=content_warning_reasons(sample),
        final=FinalLabel.objects.filter(sample=sample, prompt_label_source__in=FINAL_LABEL_SOURCES).exists(),
        progress=annotator_progress(assignment.annotator_id, project, membership),
    )


def pulled_view(pull, *, categories: bool = True) -> dict[str, Any]:
    """The workbench view of a pull (services.work.Pull): what the pull read already is not read
    again; ``categories=False`` leaves out the project's categories (they never change within a
    project: its taxonomy is frozen)."""
    assignment = pull.assignment
    return _labelling_view(
        assignment,
        pull.membership,
        warnings=content_warning_reasons(assignment.sample, pull.warning_codes),
        final=False,  # a pull never hands out a final sample
        progress=progress_figures(pull.submitted, pull.submitted_today, pull.membership.remaining, pull.membership),
        categories=categories,
    )


def _labelling_view(
    assignment: Assignment, membership: Membership | None, *, warnings, final, progress, categories: bool = True
):
    sample = assignment.sample
    project = sample.project
    view = {
        "assignment": {
            "id": assignment.pk,
            "status": assignment.status,
            "lease_expires_at": assignment.lease_expires_at,
            "flagged": assignment.flagged,
        },
        "sample": {
            "id": sample.pk,
            "uid": sample.uid,
            "turns": sample.turns,
            "has_response": sample.response is not None,
        },
        "content_warning": warnings,
        "final": final,
        # Only a submitted assignment has a label of its own to show (leases are never re-given).
        "annotation": (
            own_annotation(sample, assignment.annotator_id) if assignment.status == AssignmentStatus.SUBMITTED else None
        ),
        "project": {"id": project.pk, "slug": project.slug, "name": project.name, "guidelines": project.guidelines},
        "progress": progress,
        "break_reminder_minutes": membership.break_reminder_minutes if membership else None,
    }
    if categories:
        view["categories"] = taxonomy_choices(project)
    return view


# Counting the remaining items is the costliest part of a pull (a scan of the open queue): it
# stops past a thousand ("1000+"), which keeps it to about a millisecond.
REMAINING_COUNTED_UP_TO = 1_000

# While a project has plenty of open items, more than three times the bound shown (counted up to
# that at most once a second per process), a pull shows "1000+" without counting them: for that
# to be wrong, over two thousand items would have to be done within the second; nearer the end of
# the queue every pull counts.
OPEN_ITEMS_RECOUNT_SECONDS = 1.0
open_items_clock: Callable[[], float] = time.monotonic
_plenty_open_items: Remembered[bool] = Remembered(OPEN_ITEMS_RECOUNT_SECONDS)


def open_items_plenty_bound() -> int:
    return 3 * REMAINING_COUNTED_UP_TO + 1


def open_items_plenty(project_id: int) -> bool:
    """Whether the project had at least open_items_plenty_bound() open items, counted at most
    OPEN_ITEMS_RECOUNT_SECONDS ago in this process (counted again now if longer)."""

    def count() -> bool:
        bound = open_items_plenty_bound()
        with connection.cursor() as cursor:
            cursor.execute(hot_path.OPEN_ITEMS, {"project": project_id, "bound": bound, "false": False})
            return cursor.fetchone()[0] >= bound

    return _plenty_open_items.get(project_id, count, now=open_items_clock())


def annotator_progress(
    user_id: int, project: Project, membership: Membership | None, *, submitted: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Items submitted (in all, today), the daily cap, and ``remaining``: the queue's open items this
    annotator has not done or skipped, the one in front of them included (an upper bound: others
    may fill some of them first). Counting stops past REMAINING_COUNTED_UP_TO (``remaining_more``),
    so that a pull stays fast on a queue of millions. ``submitted``: (in all, today), already read."""
    if submitted is None:
        submitted = submissions_tallied(user_id, project.pk)
    params = {"project": project.pk, "user": user_id, "bound": remaining_bound(), "false": False}
    with connection.cursor() as cursor:
        cursor.execute(hot_path.REMAINING, params)
        counted = cursor.fetchone()[0]
    return progress_figures(*submitted, counted, membership)


def remaining_bound() -> int:
    """How far the remaining items are counted: one past the number shown."""
    return REMAINING_COUNTED_UP_TO + 1


def progress_figures(submitted: int, today: int, counted: int, membership: Membership | None) -> dict[str, Any]:
    """The progress shown on the labelling page; ``counted``: remaining items counted up to the bound + 1."""
    return {
        "submitted": submitted,
        "submitted_today": today,
        "remaining": min(counted, REMAINING_COUNTED_UP_TO),
        "remaining_more": counted > REMAINING_COUNTED_UP_TO,
        "daily_cap": membership.daily_cap if membership else None,
    }


def submissions_tallied(user_id: int, project_id: int) -> tuple[int, int]:
    """The annotator's submissions in the project: in all, and today (local date)."""
    tally = AnnotatorTally.objects.filter(project_id=project_id, annotator_id=user_id).first()
    if tally is None:
        return 0, 0
    return tally.submitted, tally.submitted_on_day if tally.day == timezone.localdate() else 0


def revisable_assignments(user_id: int, project: Project, *, before: int | None = None, limit: int = 20):
    """The annotator's submitted items whose sample is not final yet (newest first, ``before`` an
    assignment id for the next page): the labels they may still revise."""
    assignments = Assignment.objects.filter(
        annotator_id=user_id, project=project, status=AssignmentStatus.SUBMITTED
    ).exclude(sample__final_label__prompt_label_source__in=FINAL_LABEL_SOURCES)
    if before is not None:
        assignments = assignments.filter(pk__lt=before)
    rows = list(
        assignments.order_by("-pk").values_list("pk", "sample_id", "sample__uid", "sample__prompt", "submitted_at")[
            :limit
        ]
    )
    labels = dict(
        Annotation.objects.filter(annotator_id=user_id, sample_id__in=[row[1] for row in rows]).values_list(
            "sample_id", "prompt_label"
        )
    )
    return [
        {"id": pk, "uid": uid, "prompt": prompt[:120], "prompt_label": labels.get(sample), "submitted_at": submitted}
        for pk, sample, uid, prompt, submitted in rows
    ]


def annotation_history(assignment: Assignment) -> list[dict[str, Any]]:
    return list(
        AnnotationRevision.objects.filter(
            annotation__sample=assignment.sample, annotation__annotator_id=assignment.annotator_id
        ).values("changed_at", "changed_by__username", "old", "new")
    )


def project_dashboard(project: Project) -> dict[str, Any]:
    """Progress per project and per annotator, throughput per hour, queue depth."""
    items = QueueItem.objects.filter(batch__project=project)
    assignments = Assignment.objects.filter(sample__project=project)
    times: dict[int, list[int]] = {}
    for annotator_id, spent in Annotation.objects.filter(
        sample__project=project, time_spent_ms__isnull=False, import_batch__isnull=True
    ).values_list("annotator_id", "time_spent_ms"):
        times.setdefault(annotator_id, []).append(spent)
    per_annotator = []
    for row in (
        assignments.values("annotator_id", "annotator__username")
        .annotate(
            done=Count("pk", filter=Q(status=AssignmentStatus.SUBMITTED)),
            skipped=Count("pk", filter=Q(status=AssignmentStatus.SKIPPED)),
            flagged=Count("pk", filter=Q(flagged=True)),
            qa_checked=Count("qa_check"),
            qa_disagreed=Count("qa_check", filter=Q(qa_check__agrees=False)),
        )
        .order_by("annotator__username")
    ):
        spent = times.get(row["annotator_id"], [])
        per_annotator.append(
            {
                "annotator": row["annotator__username"],
                "done": row["done"],
                "skipped": row["skipped"],
                "flagged": row["flagged"],
                "median_seconds": round(statistics.median(spent) / 1000, 1) if spent else None,
                "qa_checked": row["qa_checked"],
                "qa_disagreement": row["qa_disagreed"] / row["qa_checked"] if row["qa_checked"] else None,
            }
        )
    since = timezone.now() - timedelta(hours=24)
    hourly = (
        assignments.filter(status=AssignmentStatus.SUBMITTED, submitted_at__gte=since)
        .annotate(hour=TruncHour("submitted_at"))
        .values("hour")
        .annotate(n=Count("pk"))
        .order_by("hour")
    )
    return {
        "queued": items.count(),
        "done": items.filter(done=True).count(),
        "queue_depth": items.filter(done=False, batch__active=True).count(),
        "submitted": assignments.filter(status=AssignmentStatus.SUBMITTED).count(),
        "per_annotator": per_annotator,
        "throughput_per_hour": [{"hour": row["hour"], "submitted": row["n"]} for row in hourly],
    }
