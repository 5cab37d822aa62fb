"""Celery tasks of training (thin). LoRA runs go to the ``gpu`` queue, the MiniLM guard to
``default`` (``TrainingRun.task_queue``); blends are built on ``default``."""

from core.tasks import job_task

from .models import TrainingBlend, TrainingRun
from .services import run_blend, run_training, start_waiting_runs


@job_task("training.build_blend")
def build_blend_task(blend_id: int) -> int:
    """Builds the blend, then queues the runs waiting for it."""
    start_waiting_runs(run_blend(TrainingBlend.objects.get(pk=blend_id)))
    return blend_id


@job_task("training.run")
def run_training_task(run_id: int) -> int:
    """A redelivered task (the worker died) resumes from the run's newest checkpoint."""
    run_training(TrainingRun.objects.get(pk=run_id))
    return run_id
