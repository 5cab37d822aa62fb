"""Annotation's final labels become feedback for the project's ensembles (a Celery task)."""

import logging

from .models import Ensemble
from .tasks import feedback_from_final_label_task

logger = logging.getLogger(__name__)


def queue_final_label_feedback(sender, sample_id: int, project_id: int, **kwargs) -> None:
    """Queues the feedback only where the sample's project has an ensemble; with the task broker
    away it is applied here instead of being lost (the task is small and harmless to run twice)."""
    if not Ensemble.objects.filter(project_id=project_id).exists():
        return
    try:
        feedback_from_final_label_task.apply_async((sample_id,), retry=False)
    except Exception as error:  # kombu's OperationalError, socket errors: the broker is away
        logger.warning("final-label feedback of sample %s applied in the request: broker away (%s)", sample_id, error)
        feedback_from_final_label_task(sample_id)
