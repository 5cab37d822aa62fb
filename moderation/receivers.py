"""Annotation's final labels become feedback for the project's ensembles (a Celery task)."""

import logging

from django.db import connection

from .models import Ensemble
from .tasks import feedback_from_final_label_task

logger = logging.getLogger(__name__)


def queue_final_label_feedback(sender, sample_id: int, project_id: int, **kwargs) -> None:
    """Queues the feedback only where the sample's project has an ensemble; with the task broker
    away it is applied here instead of being lost (the task is small and harmless to run twice)."""
    if not _has_ensemble(project_id):
        return
    try:
        feedback_from_final_label_task.apply_async((sample_id,), retry=False)
    except Exception as error:  # kombu's OperationalError, socket errors: the broker is away
        logger.warning("final-label feedback of sample %s applied in the request: broker away (%s)", sample_id, error)
        feedback_from_final_label_task(sample_id)


def _has_ensemble(project_id: int) -> bool:
    """One plain statement: this runs after every final label a labelling request decides."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {Ensemble._meta.db_table} WHERE project_id = %s LIMIT 1", [project_id])
        return cursor.fetchone() is not None
