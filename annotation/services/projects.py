"""Creating projects."""

from django.db import transaction

from core.errors import ApplicationError
from taxonomy.models import Taxonomy
from taxonomy.selectors import default_taxonomy
from taxonomy.services import freeze_taxonomy

from ..labels import NeedsCautionPolicy
from ..models import Project


class ProjectError(ApplicationError):
    """Project settings the app cannot take."""


@transaction.atomic
def create_project(
    *,
    name: str,
    slug: str,
    taxonomy: Taxonomy | None = None,
    guidelines: str = "",
    annotations_per_sample: int = 3,
    needs_caution_policy: str = NeedsCautionPolicy.UNSAFE,
    created_by=None,
) -> Project:
    """A new project; its taxonomy version freezes, since labels now refer to it."""
    taxonomy = taxonomy or default_taxonomy()
    if annotations_per_sample < 1:
        raise ProjectError("annotations_per_sample must be at least 1")
    freeze_taxonomy(taxonomy)
    return Project.objects.create(
        name=name,
        slug=slug,
        taxonomy=taxonomy,
        guidelines=guidelines,
        annotations_per_sample=annotations_per_sample,
        needs_caution_policy=NeedsCautionPolicy(needs_caution_policy),
        created_by=created_by,
    )
