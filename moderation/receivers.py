"""Annotation's final labels become feedback for the project's ensembles (a Celery task)."""

from .models import Ensemble
from .tasks import feedback_from_final_label_task


def queue_final_label_feedback(sender, sample_id: int, project_id: int, **kwargs) -> None:
    """Queues the feedback only where the sample's project has an ensemble."""
    if Ensemble.objects.filter(project_id=project_id).exists():
        feedback_from_final_label_task.delay(sample_id)
