"""Quality-lead re-checks, as the Aegis team did them: reviewers re-label, blind, a fixed share
(default 15 per 100) of each annotator's completed items; disagreement shows per annotator."""

import hashlib

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from ..labels import LabelError, check_label_submission
from ..models import Assignment, AssignmentStatus, Project, ProjectRole, QACheck
from ..permissions import require_role


def due_for_qa(assignment_id: int, per_hundred: int) -> bool:
    """A stable pseudo-random choice: the same items are chosen however often one asks."""
    digest = hashlib.sha256(f"qa:{assignment_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < per_hundred


def next_qa_item(project: Project, reviewer) -> Assignment | None:
    """The oldest completed item chosen for QA, not yet re-checked and not the reviewer's own."""
    require_role(reviewer, project, ProjectRole.REVIEWER, ProjectRole.ADMIN)
    candidates = (
        Assignment.objects.filter(sample__project=project, status=AssignmentStatus.SUBMITTED, qa_check__isnull=True)
        .exclude(annotator=reviewer)
        .select_related("sample")
        .order_by("submitted_at", "pk")
    )
    for assignment in candidates.iterator(chunk_size=500):
        if due_for_qa(assignment.pk, project.qa_per_hundred):
            return assignment
    return None


@transaction.atomic
def record_qa_check(
    project: Project,
    assignment_id: int,
    reviewer,
    *,
    prompt_label: str,
    response_label: str | None = None,
    categories: list[str] | None = None,
) -> QACheck:
    require_role(reviewer, project, ProjectRole.REVIEWER, ProjectRole.ADMIN)
    assignment = Assignment.objects.select_related("sample").filter(pk=assignment_id, sample__project=project).first()
    if assignment is None or assignment.status != AssignmentStatus.SUBMITTED or assignment.annotator_id == reviewer.pk:
        raise PermissionDenied("not an item you can re-check")
    prompt, response, codes = check_label_submission(
        has_response=assignment.sample.response is not None,
        hazard_codes=list(project.taxonomy.categories.filter(hazard=True).values_list("code", flat=True)),
        prompt_label=prompt_label,
        response_label=response_label,
        categories=list(categories or []),
    )
    original = assignment.sample.annotations.get(annotator_id=assignment.annotator_id)
    try:
        with transaction.atomic():
            return QACheck.objects.create(
                assignment=assignment,
                reviewer=reviewer,
                prompt_label=prompt,
                response_label=response,
                categories=codes,
                agrees=(original.prompt_label, original.response_label) == (prompt, response),
            )
    except IntegrityError:
        raise LabelError("assignment", "this item was re-checked already") from None
