"""What a dataset card says about a project: taxonomy, annotators, agreement, jury and refusal models."""

from typing import Any

from django.db.models import Count, Q

from .extensions import jury_card_facts
from .models import AgreementReport, Annotation, Project


def dataset_card_facts(project: Project) -> dict[str, Any]:
    """Reads everything the card needs about the project (a handful of queries, none per sample)."""
    taxonomy = project.taxonomy
    return {
        "project": {"name": project.name, "slug": project.slug},
        "taxonomy": {
            "name": taxonomy.name,
            "slug": taxonomy.slug,
            "version": taxonomy.version,
            "categories": [
                {"code": c.code, "name": c.name, "kind": c.kind, "definition": c.definition}
                for c in taxonomy.categories.order_by("position")
            ],
        },
        "labelling": {
            "annotations_per_sample": project.annotations_per_sample,
            "qa_per_hundred": project.qa_per_hundred,
            "review_below_agreement": project.review_below_agreement,
            "needs_caution_policy": project.needs_caution_policy,
            **_annotator_counts(project),
        },
        "agreement": _latest_agreement(project),
        **jury_card_facts(project),
    }


def _annotator_counts(project: Project) -> dict[str, int]:
    """People who labelled in the app, and annotators whose labels came with an import."""
    per_annotator = (
        Annotation.objects.filter(sample__project=project)
        .values("annotator_id")
        .annotate(imported=Count("pk", filter=Q(import_batch__isnull=False)), total=Count("pk"))
    )
    in_app = imported = annotations = 0
    for row in per_annotator:
        annotations += row["total"]
        if row["imported"] == row["total"]:
            imported += 1
        else:
            in_app += 1
    return {"annotators_in_app": in_app, "imported_annotators": imported, "annotations": annotations}


def _latest_agreement(project: Project) -> dict[str, Any] | None:
    """The project's newest finished agreement report, and whether the labels changed since."""
    from .services.reports import labels_fingerprint

    report = (
        AgreementReport.objects.succeeded().filter(project=project).order_by("-finished_at").first()
    )
    if report is None:
        return None
    return {
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
        "current": report.labels_fingerprint == labels_fingerprint(project),
        "report": report.report,
    }

