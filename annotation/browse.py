"""Reads of the sample browser: filters, full-text search, keyset pages and a sample's whole record.

Full-text search uses PostgreSQL's ``to_tsvector('english', …)`` stored in a column with a GIN index
(annotation.search_index: kept by a trigger, filled after bulk imports), and on SQLite an FTS5 table
kept in sync by triggers (migrations 0008 and 0011).
"""

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from core.errors import ApplicationError

from .exporting import DEFAULT_SPLIT_RATIOS, SPLITS, split_of
from .labels import LabelSource, SafetyLabel
from .models import (
    Annotation,
    ExportSnapshot,
    FinalLabel,
    ImportBatch,
    Project,
    QueueItem,
    ReviewItem,
    Sample,
    SampleCategory,
)
from .search_index import MATCH_SQL
from .selectors import taxonomy_choices

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# With a split filter, rows are checked in Python: a page reads at most this many rows.
SPLIT_SCAN_LIMIT = 20_000
SPLIT_SCAN_CHUNK = 1_000
STATUSES = {
    "new": "not queued, no final label",
    "queued": "in a queue, waiting for annotators",
    "review": "waiting for a reviewer",
    "final": "has a final label",
}
NO_LABEL = "none"
SQLITE_MATCH = (
    '"annotation_sample"."id" IN (SELECT rowid FROM annotation_sample_fts WHERE annotation_sample_fts MATCH %s)'
)


class BrowseError(ApplicationError):
    """A filter value the browser cannot use; names the field (the API answers ``{field: message}``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def response_body(self) -> dict[str, str]:
        return {self.field: self.message}


@dataclass(frozen=True)
class SampleFilters:
    q: str = ""
    label: str = ""
    source: str = ""
    category: str = ""
    annotator: str = ""
    status: str = ""
    split: str = ""
    provenance: str = ""

    @classmethod
    def from_params(cls, params) -> "SampleFilters":
        """Filters from a query string (or form); raises BrowseError for an unknown value."""
        values = {f.name: (params.get(f.name) or "").strip() for f in fields(cls)}
        choices = {
            "label": [*SafetyLabel.values, NO_LABEL],
            "status": list(STATUSES),
            "split": list(SPLITS),
            "provenance": LabelSource.values,
        }
        for name, allowed in choices.items():
            if values[name] and values[name] not in allowed:
                raise BrowseError(name, f"{values[name]!r} is not one of {', '.join(allowed)}")
        if len(values["q"]) > 500:
            raise BrowseError("q", "search text longer than 500 characters")
        return cls(**values)

    def as_params(self) -> dict[str, str]:
        return {name: value for name, value in asdict(self).items() if value}


def fts5_query(text: str) -> str:
    """A user's words as an FTS5 query that matches rows holding all of them (no FTS5 syntax)."""
    return " ".join(f'"{word}"' for word in re.findall(r"\w+", text))


def _text_search(queryset: QuerySet[Sample], text: str) -> QuerySet[Sample]:
    if connection.vendor == "postgresql":
        return queryset.extra(where=[MATCH_SQL], params=[text, text])
    query = fts5_query(text)
    if not query:
        return queryset.none()
    return queryset.extra(where=[SQLITE_MATCH], params=[query])


def matching_samples(project: Project, filters: SampleFilters) -> QuerySet[Sample]:
    """The project's samples that pass every filter except ``split`` (see ``in_split``)."""
    queryset = Sample.objects.filter(project=project)
    if filters.q:
        queryset = _text_search(queryset, filters.q)
    if filters.source:
        queryset = queryset.filter(source_name=filters.source)
    if filters.label == NO_LABEL:
        queryset = queryset.filter(final_label__isnull=True)
    elif filters.label:
        queryset = queryset.filter(
            Q(final_label__prompt_label=filters.label) | Q(final_label__response_label=filters.label)
        )
    if filters.provenance:
        queryset = queryset.filter(
            Q(final_label__prompt_label_source=filters.provenance)
            | Q(final_label__response_label_source=filters.provenance)
        )
    if filters.category:
        queryset = queryset.filter(Exists(SampleCategory.objects.filter(sample=OuterRef("pk"), code=filters.category)))
    if filters.annotator:
        queryset = queryset.filter(
            Exists(Annotation.objects.filter(sample=OuterRef("pk"), annotator__username=filters.annotator))
        )
    return _with_status(queryset, filters.status)


def _with_status(queryset: QuerySet[Sample], status: str) -> QuerySet[Sample]:
    queued = Exists(QueueItem.objects.filter(sample=OuterRef("pk")))
    if status == "new":
        return queryset.filter(~queued, final_label__isnull=True)
    if status == "queued":
        waiting = Exists(QueueItem.objects.filter(sample=OuterRef("pk"), done=False))
        return queryset.filter(waiting, final_label__isnull=True)
    if status == "review":
        return queryset.filter(Exists(ReviewItem.objects.filter(sample=OuterRef("pk"), resolved_at__isnull=True)))
    if status == "final":
        return queryset.filter(final_label__isnull=False)
    return queryset


def split_settings(project: Project) -> tuple[dict[str, float], str]:
    """The split ratios and seed of the project's latest export (else the export defaults)."""
    latest = (
        ExportSnapshot.objects.succeeded().filter(project=project)
        .order_by("-created_at", "-pk")
        .values_list("split_ratios", "split_seed")
        .first()
    )
    return latest if latest else (DEFAULT_SPLIT_RATIOS, "aegis")


def in_split(project: Project, split: str):
    """A test on a sample id: is it in ``split`` as the project's export assigns splits?"""
    ratios, seed = split_settings(project)
    return lambda uid: split_of(uid, ratios, seed) == split


@dataclass
class BrowsePage:
    rows: list[Sample]
    next_cursor: int | None

    def __post_init__(self) -> None:
        for sample in self.rows:  # what a row of the page shows, without a query per row
            sample.final = sample.final_label if hasattr(sample, "final_label") else None
            sample.prompt_snippet = snippet(sample.prompt, 200)
            sample.response_snippet = snippet(sample.response, 160)


def snippet(text: str | None, length: int) -> str | None:
    """The start of a text for a table cell (cheaper than the truncatechars filter on long texts)."""
    if text is None or len(text) <= length:
        return text
    return text[: length - 1] + "…"


def parse_cursor(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise BrowseError("cursor", f"{value!r} is not a cursor from a previous page")
    return int(value)


def parse_page_size(value: str | None) -> int:
    if not value:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise BrowseError("page_size", f"{value!r}: expected a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(value)


def browse_page(
    project: Project, filters: SampleFilters, *, cursor: int | None = None, page_size: int = DEFAULT_PAGE_SIZE
) -> BrowsePage:
    """One page of matching samples, newest first; ``next_cursor`` continues after it (keyset)."""
    queryset = matching_samples(project, filters).order_by("-pk")
    if cursor is not None:
        queryset = queryset.filter(pk__lt=cursor)
        if (filters.label and filters.label != NO_LABEL) or filters.provenance or filters.status == "final":
            # The same bound on the joined final labels: PostgreSQL carries equalities across a
            # join, not ranges, and would otherwise read final labels from the newest down.
            queryset = queryset.filter(final_label__sample_id__lt=cursor)
    if not filters.split:
        rows = list(queryset.select_related("final_label")[: page_size + 1])
        return BrowsePage(rows[:page_size], rows[page_size - 1].pk if len(rows) > page_size else None)
    wanted = in_split(project, filters.split)
    keys: list[int] = []
    scanned, next_cursor = 0, None
    while scanned < SPLIT_SCAN_LIMIT and next_cursor is None:
        chunk = list(queryset.values_list("pk", "uid")[:SPLIT_SCAN_CHUNK])
        for pk, uid in chunk:
            if wanted(uid):
                keys.append(pk)
                if len(keys) == page_size:
                    next_cursor = pk
                    break
        if len(chunk) < SPLIT_SCAN_CHUNK:
            break
        scanned += len(chunk)
        queryset = queryset.filter(pk__lt=chunk[-1][0])
        if scanned >= SPLIT_SCAN_LIMIT and next_cursor is None:
            next_cursor = chunk[-1][0]  # scanned enough for one request: the next page goes on from here
    rows = list(Sample.objects.filter(pk__in=keys).select_related("final_label").order_by("-pk"))
    return BrowsePage(rows, next_cursor)


def project_sources(project: Project) -> list[str]:
    """Source names of the project's samples, from its imports (a DISTINCT over millions of
    samples would take longer than the page), plus generated refusals when there are any."""
    names = set(ImportBatch.objects.filter(project=project).values_list("source_name", flat=True))
    refusals = LabelSource.REFUSAL_DATA_AUGMENTATION.value
    if Sample.objects.filter(project=project, source_name=refusals).exists():
        names.add(refusals)
    return sorted(names)


def filter_choices(project: Project) -> dict[str, Any]:
    """The values offered in the browser's filter menus."""
    return {
        "labels": [*SafetyLabel.choices, (NO_LABEL, "No final label")],
        "sources": project_sources(project),
        "categories": [(c["code"], c["name"]) for c in taxonomy_choices(project)],
        "statuses": list(STATUSES.items()),
        "splits": SPLITS,
        "provenances": LabelSource.choices,
    }


def sample_record(sample: Sample) -> dict[str, Any]:
    """Everything annotation knows about one sample: annotations with their revisions, the final
    label, review and queue state (the console adds the jury's verdicts). For reviewers and admins
    only (it shows every label)."""
    annotations = list(
        Annotation.objects.filter(sample=sample)
        .select_related("annotator")
        .prefetch_related("revisions__changed_by")
        .order_by("created_at", "pk")
    )
    final = FinalLabel.objects.filter(sample=sample).select_related("decided_by").first()
    review = ReviewItem.objects.filter(sample=sample).select_related("resolved_by").first()
    queue = list(QueueItem.objects.filter(sample=sample).select_related("batch").order_by("pk"))
    return {
        "sample": sample,
        "annotations": annotations,
        "final": final,
        "review": review,
        "queue": queue,
        "categories": list(SampleCategory.objects.filter(sample=sample).values_list("code", flat=True)),
    }
