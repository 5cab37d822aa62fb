"""Who may evaluate, and who may see a run (pages, API and services check these)."""

from django.core.exceptions import PermissionDenied

from annotation.selectors import administered_projects

from .models import EvaluationRun
from .selectors import visible_runs


def can_evaluate(user) -> bool:
    """Staff, and admins of at least one project."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or administered_projects(user).exists()


def require_evaluator(user) -> None:
    if not can_evaluate(user):
        raise PermissionDenied("only project admins and staff run evaluations")


def can_view_run(user, run: EvaluationRun) -> bool:
    return can_evaluate(user) and visible_runs(user).filter(pk=run.pk).exists()


def require_run_access(user, run: EvaluationRun) -> None:
    if not can_view_run(user, run):
        raise PermissionDenied(f"{user} cannot see evaluation run {run.pk}")
