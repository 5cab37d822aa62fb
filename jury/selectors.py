"""Reads of the jury."""

from django.db.models import QuerySet

from annotation.models import Project

from .models import GenerationJob, Juror, JuryJob


def project_jurors(project: Project) -> QuerySet[Juror]:
    return Juror.objects.filter(project=project).order_by("name")


def project_jury_jobs(project: Project) -> QuerySet[JuryJob]:
    return JuryJob.objects.filter(project=project)


def project_generation_jobs(project: Project) -> QuerySet[GenerationJob]:
    return GenerationJob.objects.filter(project=project)


def jury_against_humans(project: Project) -> dict:
    """Cohen's kappa of each juror, and of the jury's majority, against the human majority
    label, per judged part, on the samples where both exist."""
    from annotation.agreement import kappa_of_pairs
    from annotation.labels import apply_needs_caution_policy
    from annotation.models import Annotation
    from annotation.services.adjudication import majority

    from .aggregation import aggregate
    from .models import JudgedPart, JuryVerdict

    result = {}
    for part in JudgedPart.values:
        field = f"{part}_label"
        human_votes: dict[int, list[str]] = {}
        for sample_id, label in Annotation.objects.filter(
            sample__project=project, import_batch__isnull=True, **{f"{field}__isnull": False}
        ).values_list("sample_id", field):
            human_votes.setdefault(sample_id, []).append(
                apply_needs_caution_policy(label, project.needs_caution_policy)
            )
        humans = {sample_id: majority(votes)[0] for sample_id, votes in human_votes.items()}
        humans = {sample_id: label for sample_id, label in humans.items() if label is not None}
        verdicts: dict[int, dict[str, tuple[str | None, list[str]]]] = {}
        for sample_id, juror, label, categories in JuryVerdict.objects.filter(
            sample__project=project, part=part
        ).values_list("sample_id", "juror__name", "label", "categories"):
            verdicts.setdefault(sample_id, {})[juror] = (label, categories)
        if not verdicts or not humans:
            continue
        jurors = sorted({name for by_juror in verdicts.values() for name in by_juror})
        rows = {}
        for juror in jurors:
            pairs = [
                (verdicts[s][juror][0], humans[s])
                for s in verdicts
                if s in humans and juror in verdicts[s] and verdicts[s][juror][0] is not None
            ]
            rows[juror] = kappa_of_pairs(pairs).as_dict()
        majority_pairs = []
        for sample_id, by_juror in verdicts.items():
            decision = aggregate(list(by_juror.values()), jurors=len(jurors))
            if sample_id in humans and decision.label is not None:
                majority_pairs.append((decision.label, humans[sample_id]))
        rows["jury majority"] = kappa_of_pairs(majority_pairs).as_dict()
        result[part] = rows
    return result
