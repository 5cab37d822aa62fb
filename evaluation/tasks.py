"""Celery tasks of evaluation (thin). Runs with an in-process causal LM go to the ``gpu`` queue,
the rest (HTTP endpoints, the MiniLM CPU guard, prediction files) to ``default``
(``EvaluationRun.task_queue``)."""

from core.tasks import job_task

from .models import EvaluationRun
from .services import run_evaluation


@job_task("evaluation.run")
def run_evaluation_task(run_id: int) -> int:
    """A redelivered task (the worker died) resumes: cells already scored are kept."""
    run_evaluation(EvaluationRun.objects.get(pk=run_id))
    return run_id
