"""Final labels from annotations: majority → ``human``; no majority or low agreement → a
reviewer decides (``adjudicated``). Reviewers see every annotation of the samples they settle."""

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from .. import hot_path as sql
from ..extensions import jury_verdicts
from ..labels import FINAL_LABEL_SOURCES, LabelError, LabelSource, SafetyLabel, check_label_submission
from ..models import Annotation, FinalLabel, Project, ProjectRole, QueueItem, ReviewItem, Sample, SampleCategory
from ..permissions import require_role
from ..signals import final_label_decided


def majority(values: list[str]) -> tuple[str | None, float]:
    """The value most annotators chose and its share; None when the top is tied."""
    ranked = Counter(values).most_common(2)
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None, 0.0
    return ranked[0][0], ranked[0][1] / len(values)


def majority_categories(annotations: Iterable) -> list[str]:
    """Codes named by at least half of the annotations (anything with ``categories``), most named
    first (ties by first naming)."""
    annotations = list(annotations)
    named = Counter(code for annotation in annotations for code in annotation.categories)
    needed = len(annotations) / 2
    return [code for code, count in named.most_common() if count >= needed]


class Vote(NamedTuple):
    """One annotator's labels of a sample, as deciding its final label reads them."""

    prompt_label: str | None
    response_label: str | None
    categories: list[str]


def _final_source_and_votes(sample_id: int) -> tuple[str | None, list[Vote]]:
    """The source of the sample's final label (None without one) and its annotators' votes."""
    rows = sql.fetch_all(sql.FINAL_SOURCE_AND_VOTES, {"sample": sample_id})
    votes = [
        Vote(prompt, response, sql.json_value(codes) or [])
        for _, annotation_id, prompt, response, codes in rows
        if annotation_id is not None
    ]
    return (rows[0][0] if rows else None), votes


def open_review(sample: Sample | int, reason: str) -> ReviewItem:
    """Opens (or adds the reason to) the sample's review item; ``sample`` a Sample or its id."""
    sample_id = sample if isinstance(sample, int) else sample.pk
    item, created = ReviewItem.objects.get_or_create(sample_id=sample_id, defaults={"reason": reason})
    if not created and item.resolved_at is None and reason not in item.reason:
        item.reason = f"{item.reason}; {reason}"
        item.save(update_fields=["reason"])
    return item


def votes_seen(rows: list[list] | None, own: Vote, *, own_is_new: bool) -> list[Vote]:
    """The sample's votes from a submission's statement (hot_path.VOTES_SEEN), the caller's as it
    just wrote them."""
    votes = [own if is_own else Vote(prompt, response, codes or []) for is_own, prompt, response, codes in rows or []]
    return [*votes, own] if own_is_new else votes


class FinalDecision(NamedTuple):
    """The final label a sample's votes decide (its source: ``human``)."""

    prompt_label: str
    response_label: str | None
    categories: list[str]

    def params(self) -> dict:
        """The final label's parameters of hot_path.FINAL_LABEL_ROW (sample and now aside)."""
        return {
            "final_prompt_label": self.prompt_label,
            "final_prompt_label_source": LabelSource.HUMAN.value,
            "final_response_label": self.response_label,
            "final_response_label_source": LabelSource.HUMAN.value if self.response_label else None,
            "final_categories": sql.json_param(self.categories),
        }


def decide_final_label(votes: list[Vote], *, has_response: bool, threshold: float) -> FinalDecision | str:
    """The final label the votes decide: the majority, with the categories at least half of them
    name if it is unsafe; or why a reviewer must decide (no majority, agreement below ``threshold``)."""
    prompt, prompt_share = majority([a.prompt_label for a in votes if a.prompt_label])
    response, response_share = None, 1.0
    if has_response:
        response, response_share = majority([a.response_label for a in votes if a.response_label])
    if prompt is None or (has_response and response is None):
        return "no majority label"
    if min(prompt_share, response_share) < threshold:
        return f"agreement {min(prompt_share, response_share):.2f} below {threshold:.2f}"
    unsafe = SafetyLabel.UNSAFE in (prompt, response) or SafetyLabel.NEEDS_CAUTION in (prompt, response)
    return FinalDecision(prompt, response, majority_categories(votes) if unsafe else [])


@transaction.atomic(savepoint=False)  # inside a submission: its failure undoes the submission too
def finalize_sample(
    sample_id: int, *, project: Project, has_response: bool, votes: list[Vote] | None = None
) -> FinalLabel | ReviewItem | None:
    """Called when a sample of ``project`` has all its annotations: majority → final label, else review.

    A final label from humans or a reviewer is never replaced here; imported ones are. ``votes``:
    the annotators' labels, if the caller read them after every submission of the sample.
    """
    if votes is None:
        final_source, votes = _final_source_and_votes(sample_id)
        if final_source in FINAL_LABEL_SOURCES:
            return None
    if not votes:
        return None
    decision = decide_final_label(votes, has_response=has_response, threshold=project.review_below_agreement)
    if isinstance(decision, str):
        return open_review(sample_id, decision)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(sql.UPSERT_FINAL_LABEL, {"sample": sample_id, "now": sql.when(now), **decision.params()})
        if cursor.fetchone() is None:
            return None  # a reviewer decided it meanwhile
    announce_final_label(sample_id, project.pk)
    return FinalLabel(
        sample_id=sample_id,
        prompt_label=decision.prompt_label,
        prompt_label_source=LabelSource.HUMAN,
        response_label=decision.response_label,
        response_label_source=LabelSource.HUMAN if decision.response_label else None,
        categories=decision.categories,
        updated_at=now,
    )


def announce_final_label(sample_id: int, project_id: int) -> None:
    """Once the transaction commits, tells the final_label_decided signal's receivers (moderation)."""
    transaction.on_commit(
        lambda: final_label_decided.send(sender=FinalLabel, sample_id=sample_id, project_id=project_id), robust=True
    )


def _reviewable(sample_id: int, reviewer, project: Project) -> Sample:
    require_role(reviewer, project, ProjectRole.REVIEWER, ProjectRole.ADMIN)
    sample = Sample.objects.select_related("project__taxonomy").filter(pk=sample_id, project=project).first()
    if sample is None:
        raise PermissionDenied("no such sample in this project")
    return sample


@transaction.atomic
def adjudicate(
    project: Project,
    sample_id: int,
    reviewer,
    *,
    prompt_label: str | None,
    response_label: str | None = None,
    categories: list[str] | None = None,
) -> FinalLabel:
    """A reviewer sets the final label (provenance ``adjudicated``, who decided is kept)."""
    sample = _reviewable(sample_id, reviewer, project)
    prompt, response, codes = check_label_submission(
        has_response=sample.response is not None,
        hazard_codes=list(project.taxonomy.categories.filter(hazard=True).values_list("code", flat=True)),
        prompt_label=prompt_label,
        response_label=response_label,
        categories=list(categories or []),
    )
    final, _ = FinalLabel.objects.update_or_create(
        sample=sample,
        defaults={
            "prompt_label": prompt,
            "prompt_label_source": LabelSource.ADJUDICATED,
            "response_label": response,
            "response_label_source": LabelSource.ADJUDICATED if response else None,
            "categories": codes,
            "decided_by": reviewer,
            "import_batch": None,
        },
    )
    SampleCategory.objects.bulk_create([SampleCategory(sample=sample, code=c) for c in codes], ignore_conflicts=True)
    ReviewItem.objects.filter(sample=sample, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=reviewer
    )
    QueueItem.objects.filter(sample=sample, done=False).update(done=True)  # final: never handed out again
    announce_final_label(sample.pk, project.pk)
    return final


REVIEW_REASONS = {
    "no-majority": "no majority",
    "low-agreement": "below",
    "flagged": "flagged by",
    "jury": "jury undecided",
}


def open_review_items(project: Project, reviewer, *, reason: str = "") -> QuerySet[ReviewItem]:
    """Open review items, oldest first; ``reason`` (a key of REVIEW_REASONS) keeps one kind."""
    require_role(reviewer, project, ProjectRole.REVIEWER, ProjectRole.ADMIN)
    items = ReviewItem.objects.filter(sample__project=project, resolved_at__isnull=True)
    if reason:
        if reason not in REVIEW_REASONS:
            raise LabelError("reason", f"{reason!r} is not one of {', '.join(REVIEW_REASONS)}")
        items = items.filter(reason__icontains=REVIEW_REASONS[reason])
    return items.select_related("sample").order_by("created_at", "pk")


def _proposal(sample: Sample) -> dict | None:
    """A label already proposed for the sample (imported or by the jury), to start the reviewer from."""
    final = FinalLabel.objects.filter(sample=sample).first()
    if final is None:
        return None
    return {
        "prompt_label": final.prompt_label,
        "response_label": final.response_label,
        "categories": final.categories,
        "source": final.prompt_label_source or final.response_label_source,
    }


def review_entries(items: Iterable[ReviewItem]) -> list[dict]:
    """Each review item with every annotation (reviewers are not blind), the jury and any proposal."""
    result = []
    for item in items:
        annotations = Annotation.objects.filter(sample=item.sample).select_related("annotator")
        result.append(
            {
                "sample": {
                    "id": item.sample.pk,
                    "uid": item.sample.uid,
                    "turns": item.sample.turns,
                    "has_response": item.sample.response is not None,
                },
                "reason": item.reason,
                "jury": jury_verdicts(item.sample),
                "proposal": _proposal(item.sample),
                "annotations": [
                    {
                        "annotator": a.annotator.username,
                        "prompt_label": a.prompt_label,
                        "response_label": a.response_label,
                        "categories": a.categories,
                        "other_risks": a.other_risks,
                        "comment": a.comment,
                    }
                    for a in annotations
                ],
            }
        )
    return result


def review_queue(project: Project, reviewer, *, reason: str = "", offset: int = 0, limit: int = 200) -> list[dict]:
    """Open review items with every annotation, oldest first, a page at a time."""
    return review_entries(open_review_items(project, reviewer, reason=reason)[offset : offset + limit])
