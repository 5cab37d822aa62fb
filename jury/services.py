"""Writes of the jury: verdicts (idempotent) and jury decisions as final labels, which never
overwrite human labels; undecided samples go to the human review queue."""

from django.db import transaction

from annotation.labels import FINAL_LABEL_SOURCES, LabelSource
from annotation.models import FinalLabel, ReviewItem, Sample
from annotation.services.adjudication import open_review
from taxonomy.prompts import GuardVerdict

from .aggregation import JuryDecision, aggregate
from .models import JudgedPart, Juror, JuryVerdict


def record_verdict(sample: Sample, juror: Juror, part: str, verdict: GuardVerdict) -> JuryVerdict:
    """Stores a juror's parsed answer; an unparseable one is an abstention that keeps the raw text."""
    label = verdict.prompt_label if part == JudgedPart.PROMPT else verdict.response_label
    stored, _ = JuryVerdict.objects.update_or_create(
        sample=sample,
        juror=juror,
        part=JudgedPart(part),
        defaults={
            "label": label,
            "categories": list(verdict.categories) if label == "unsafe" else [],
            "raw": verdict.raw,
            "error": verdict.error or ("" if label else "no rating for this part"),
        },
    )
    return stored


def decide(sample: Sample, part: str, *, min_category_votes: int = 2) -> JuryDecision:
    jurors = Juror.objects.filter(project=sample.project, active=True)
    relevant = jurors.filter(judges_prompts=True) if part == JudgedPart.PROMPT else jurors.filter(judges_responses=True)
    verdicts = {v.juror_id: v for v in JuryVerdict.objects.filter(sample=sample, part=part, juror__in=relevant)}
    answers = [
        (verdicts[j].label, verdicts[j].categories) if j in verdicts else (None, [])
        for j in relevant.values_list("pk", flat=True)
    ]
    return aggregate(answers, jurors=len(answers), min_category_votes=min_category_votes)


@transaction.atomic
def apply_jury_decision(sample: Sample, part: str, decision: JuryDecision) -> FinalLabel | ReviewItem | None:
    """Writes the jury's label (provenance llm_jury) unless humans already decided that part."""
    final = FinalLabel.objects.select_for_update().filter(sample=sample).first()
    source = None
    if final is not None:
        source = final.prompt_label_source if part == JudgedPart.PROMPT else final.response_label_source
    if source in FINAL_LABEL_SOURCES:
        return None
    if decision.label is None:
        return open_review(sample, f"jury undecided on the {part}: {decision.reason}")
    if final is None:
        final = FinalLabel(sample=sample)
    if part == JudgedPart.PROMPT:
        final.prompt_label, final.prompt_label_source = decision.label, LabelSource.LLM_JURY
    else:
        final.response_label, final.response_label_source = decision.label, LabelSource.LLM_JURY
    final.categories = list(dict.fromkeys([*final.categories, *decision.categories]))
    final.import_batch = None
    final.save()
    return final
