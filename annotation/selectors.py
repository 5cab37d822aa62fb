"""Reads of the annotation app."""

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Q, QuerySet

from .exporting import CATEGORY_SEPARATOR, EXPORT_COLUMNS
from .labels import SafetyLabel, apply_needs_caution_policy
from .models import ExportSnapshot, ImportBatch, Project, Sample

EXPORT_FILTERS = ("sources", "label_sources")


def projects_with_counts() -> QuerySet[Project]:
    return Project.objects.select_related("taxonomy").annotate(
        sample_count=Count("samples", distinct=True),
        labelled_count=Count("samples__final_label", distinct=True),
    )


def project_samples(project: Project) -> QuerySet[Sample]:
    return Sample.objects.filter(project=project).select_related("final_label").order_by("pk")


def project_imports(project: Project) -> QuerySet[ImportBatch]:
    return ImportBatch.objects.filter(project=project)


def project_exports(project: Project) -> QuerySet[ExportSnapshot]:
    return ExportSnapshot.objects.filter(project=project)


def check_export_filters(filters: dict[str, Any]) -> dict[str, list[str]]:
    unknown = set(filters) - set(EXPORT_FILTERS)
    if unknown:
        raise ValueError(f"unknown export filters {sorted(unknown)}: use {', '.join(EXPORT_FILTERS)}")
    checked = {}
    for key in EXPORT_FILTERS:
        if filters.get(key):
            value = filters[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"export filter {key!r} must be a list of strings")
            checked[key] = sorted(value)
    return checked


def export_rows(project: Project, filters: dict[str, list[str]]) -> Iterator[dict[str, Any]]:
    """Rows in the Aegis 2.0 release columns, in storage order, streamed from the database.

    Needs Caution follows the project's policy; categories are written only for unsafe rows.
    """
    names = {c.code: c.name for c in project.taxonomy.categories.all()}
    policy = project.needs_caution_policy
    queryset = Sample.objects.filter(project=project, final_label__isnull=False)
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
    )
    unsafe = SafetyLabel.UNSAFE.value
    for uid, prompt, response, p_label, r_label, p_source, r_source, codes, reconstruction in values.iterator(
        chunk_size=2000
    ):
        p_label = apply_needs_caution_policy(p_label, policy)
        r_label = apply_needs_caution_policy(r_label, policy)
        violated = CATEGORY_SEPARATOR.join(names[c] for c in codes) if unsafe in (p_label, r_label) else ""
        yield dict(
            zip(
                EXPORT_COLUMNS,
                (uid, prompt, response, p_label, r_label, p_source, r_source, violated, reconstruction),
            )
        )
