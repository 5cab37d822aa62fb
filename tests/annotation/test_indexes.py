"""Every foreign key of the annotation tables is the first column of some index (its own or a
wider one), so lookups and cascades by the key stay indexed after the covered indexes were dropped."""

import pytest
from django.apps import apps
from django.db import connection, models

pytestmark = pytest.mark.django_db


def first_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        c["columns"][0]
        for c in constraints.values()
        if (c["index"] or c["unique"] or c["primary_key"]) and c["columns"]
    }


# Keys left without an index on purpose, and why.
UNINDEXED = {
    # Copied from the sample for the annotator's counts, which the wider index serves with the
    # annotator first; only a project's deletion looks assignments up by it alone.
    "annotation_assignment.project_id",
}


def test_every_foreign_key_leads_an_index():
    unindexed = []
    for model in apps.get_app_config("annotation").get_models():
        leading = first_columns(model._meta.db_table)
        for field in model._meta.concrete_fields:
            if isinstance(field, models.ForeignKey) and field.column not in leading:
                unindexed.append(f"{model._meta.db_table}.{field.column}")
    assert set(unindexed) == UNINDEXED
