"""Reads of the jury, including what it adds to annotation's pages and reports (the extensions
registered in JuryConfig.ready())."""

from django.db.models import QuerySet

from annotation.models import Annotation, Project, Sample

from .models import GenerationJob, GenerationKind, JudgedPart, Juror, JuryJob, JuryVerdict


def project_jurors(project: Project) -> QuerySet[Juror]:
    return Juror.objects.filter(project=project).order_by("name")


def project_jury_jobs(project: Project) -> QuerySet[JuryJob]:
    return JuryJob.objects.filter(project=project)


def project_generation_jobs(project: Project) -> QuerySet[GenerationJob]:
    return GenerationJob.objects.filter(project=project)


def sample_verdicts(sample: Sample) -> list[JuryVerdict]:
    """The jury's verdicts on a sample, by part and juror."""
    return list(JuryVerdict.objects.filter(sample=sample).select_related("juror").order_by("part", "juror__name"))


def verdict_entries(sample: Sample) -> list[dict]:
    """The jury's verdicts on a sample as reviewers see them (annotation's ``jury_verdicts``)."""
    return [
        {"juror": v.juror.name, "part": v.part, "label": v.label, "categories": v.categories, "error": v.error}
        for v in sample_verdicts(sample)
    ]


def card_facts(project: Project) -> dict:
    """The dataset card's jury section: jurors, the vote rule's thresholds and the refusal generators
    (annotation's ``jury_card_facts``)."""
    jurors = [
        {"name": j.name, "model": j.model, "prompts": j.judges_prompts, "responses": j.judges_responses}
        for j in Juror.objects.filter(project=project, active=True).order_by("name")
    ]
    jobs = JuryJob.objects.succeeded().filter(project=project)
    generations = GenerationJob.objects.succeeded().filter(project=project, kind=GenerationKind.REFUSAL).order_by("pk")
    return {
        "jury": {
            "jurors": jurors,
            "min_category_votes": sorted(set(jobs.values_list("min_category_votes", flat=True))),
            "jobs": jobs.count(),
        },
        "refusal_generation": [{"model": g.model, "strategies": g.strategies, "samples": g.done} for g in generations],
    }


def jury_against_humans(project: Project) -> dict:
    """Cohen's kappa of each juror, and of the jury's majority, against the human majority
    label, per judged part, on the samples where both exist."""
    from annotation.agreement import kappa_of_pairs
    from annotation.labels import apply_needs_caution_policy
    from annotation.services.adjudication import majority

    from .aggregation import aggregate

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
