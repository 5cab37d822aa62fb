"""Annotation's final labels become feedback for the project's ensembles (a Celery task)."""

import logging
import time
from collections.abc import Callable

from django.db import connection

from core.remembered import Remembered

from .models import Ensemble
from .tasks import feedback_from_final_label_task

logger = logging.getLogger(__name__)

# Whether a project has an ensemble is looked up once per this many seconds per process (a
# labelling request decides a final label with almost every submission when k = 1). Ensembles
# saved or deleted in this process are seen at once; one created in another process is missed for
# at most this long, and only by samples that ensemble judged and annotators decided in that
# window; `manage.py moderation_feedback` feeds those too.
ENSEMBLE_LOOKUP_SECONDS = 2.0
_projects_with_ensembles: Remembered[bool] = Remembered(ENSEMBLE_LOOKUP_SECONDS)


def queue_final_label_feedback(sender, sample_id: int, project_id: int, **kwargs) -> None:
    """Queues the feedback only where the sample's project has an ensemble; with the task broker
    away it is applied here instead of being lost (the task is small and harmless to run twice)."""
    if not has_ensemble(project_id):
        return
    try:
        feedback_from_final_label_task.apply_async((sample_id,), retry=False)
    except Exception as error:  # kombu's OperationalError, socket errors: the broker is away
        logger.warning("final-label feedback of sample %s applied in the request: broker away (%s)", sample_id, error)
        feedback_from_final_label_task(sample_id)


def has_ensemble(project_id: int, *, clock: Callable[[], float] = time.monotonic) -> bool:
    """Whether the project has an ensemble, as read at most ENSEMBLE_LOOKUP_SECONDS ago."""

    def lookup() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {Ensemble._meta.db_table} WHERE project_id = %s LIMIT 1", [project_id])
            return cursor.fetchone() is not None

    return _projects_with_ensembles.get(project_id, lookup, now=clock())


def forget_known_ensembles(**kwargs) -> None:
    """Empties the lookups (an ensemble was saved or deleted in this process)."""
    _projects_with_ensembles.forget()
