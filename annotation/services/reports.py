"""Agreement reports: the statistics of every field, category and annotator (with the jury's
agreement when an app provides it), computed once per state of the labels (in a Celery task for
big projects), and flattened for CSV."""

from typing import Any

from django.db import transaction
from django.db.models import Count, Max

from core.jobs import JobRun

from ..extensions import jury_agreement
from ..labels import apply_needs_caution_policy
from ..models import AgreementReport, Annotation, JobStatus, Project, ProjectRole
from ..permissions import require_role
from ..selectors import taxonomy_choices


def labels_fingerprint(project: Project) -> str:
    """Changes whenever an annotation of the project is added, changed or removed."""
    state = Annotation.objects.filter(sample__project=project).aggregate(n=Count("pk"), last=Max("updated_at"))
    return f"{state['n']}:{state['last'].isoformat() if state['last'] else '-'}"


def current_agreement_report(project: Project, user) -> tuple[AgreementReport, bool]:
    """The report for the labels as they are now, and whether it still has to be computed."""
    require_role(user, project, ProjectRole.ADMIN, ProjectRole.REVIEWER)
    fingerprint = labels_fingerprint(project)
    with transaction.atomic():
        report = (
            AgreementReport.objects.filter(project=project, labels_fingerprint=fingerprint)
            .exclude(status=JobStatus.FAILED)
            .first()
        )
        if report is not None:
            return report, False
        return AgreementReport.objects.create(project=project, labels_fingerprint=fingerprint), True


def compute_agreement_report(report: AgreementReport) -> AgreementReport:
    with JobRun(report) as run:
        if run.claimed:
            run.succeed(report=agreement_report(report.project))
    return report


AGREEMENT_FIELDS = ("prompt_label", "response_label", "response_refusal")


def agreement_ratings(project: Project) -> dict[str, Any]:
    """Every annotation of the project as Ratings per field (imported annotators included)."""
    from ..agreement import Ratings

    policy = project.needs_caution_policy
    fields: dict[str, Ratings] = {name: Ratings() for name in AGREEMENT_FIELDS}
    fields.update({f"{name} (policy)": Ratings() for name in ("prompt_label", "response_label")})
    category_sets = Ratings()
    rows = Annotation.objects.filter(sample__project=project).values_list(
        "sample_id", "annotator__username", "prompt_label", "response_label", "response_refusal", "categories"
    )
    for sample, annotator, prompt, response, refusal, categories in rows.iterator(chunk_size=5000):
        fields["prompt_label"].add(sample, annotator, prompt)
        fields["response_label"].add(sample, annotator, response)
        fields["response_refusal"].add(sample, annotator, refusal)
        fields["prompt_label (policy)"].add(sample, annotator, apply_needs_caution_policy(prompt, policy))
        fields["response_label (policy)"].add(sample, annotator, apply_needs_caution_policy(response, policy))
        if prompt is not None or response is not None:
            category_sets.add(sample, annotator, frozenset(categories))
    return {"fields": fields, "category_sets": category_sets}


def agreement_report(project: Project, *, bootstrap: int = 200, seed: int = 0) -> dict[str, Any]:
    """Agreement per field, per category and over category sets, pairwise and per annotator."""
    from ..agreement import (
        binary_alpha_by_category,
        confusion_matrix,
        fleiss_kappa,
        krippendorff_alpha,
        leave_one_out,
        masi_distance,
        pairwise_cohen_kappa,
    )

    ratings = agreement_ratings(project)
    fields = {}
    for name, field_ratings in ratings["fields"].items():
        if not field_ratings.by_unit:
            continue
        fields[name] = {
            "alpha": krippendorff_alpha(field_ratings, bootstrap=bootstrap, seed=seed).as_dict(),
            "fleiss_kappa": fleiss_kappa(field_ratings).as_dict(),
            "cohen_kappa_pairs": pairwise_cohen_kappa(field_ratings),
            "leave_one_out": leave_one_out(field_ratings),
            "confusion": confusion_matrix(field_ratings),
        }
    codes = [c["code"] for c in taxonomy_choices(project)]
    per_category = {
        code: stat.as_dict() for code, stat in binary_alpha_by_category(ratings["category_sets"], codes).items()
    }
    return {
        "project": project.slug,
        "needs_caution_policy": project.needs_caution_policy,
        "fields": fields,
        "category_sets_masi_alpha": krippendorff_alpha(ratings["category_sets"], distance=masi_distance).as_dict(),
        "per_category_alpha": per_category,
        "jury_vs_humans": jury_agreement(project),
        "bootstrap": {"resamples": bootstrap, "seed": seed},
    }


def agreement_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The report flattened for CSV: field, statistic, who, value, ci low, ci high, units, note."""
    rows: list[list[Any]] = [["field", "statistic", "who", "value", "ci95_low", "ci95_high", "units", "undefined"]]

    def add(field: str, statistic: str, who: str, stat: dict[str, Any]) -> None:
        low, high = stat.get("ci95", [None, None])
        rows.append([field, statistic, who, stat["value"], low, high, stat["units"], stat.get("undefined", "")])

    for name, stats in report["fields"].items():
        add(name, "krippendorff_alpha", "all", stats["alpha"])
        add(name, "fleiss_kappa", "all", stats["fleiss_kappa"])
        for pair in stats["cohen_kappa_pairs"]:
            add(name, "cohen_kappa", f"{pair['first']} vs {pair['second']}", pair)
        for row in stats["leave_one_out"]:
            rows.append(
                [
                    name,
                    "agreement_with_majority_of_others",
                    row["annotator"],
                    row["agreement"],
                    "",
                    "",
                    row["units"],
                    "",
                ]
            )
    add("category_sets", "krippendorff_alpha_masi", "all", report["category_sets_masi_alpha"])
    for part, jurors in report.get("jury_vs_humans", {}).items():
        for juror, stat in jurors.items():
            add(f"{part}_label", "cohen_kappa_jury_vs_human_majority", juror, stat)
    for code, stat in report["per_category_alpha"].items():
        add(f"category {code}", "krippendorff_alpha_binary", "all", stat)
    return rows
