"""Foreign keys whose own index repeats the first column of another index lose it: every lease,
submission and queue update wrote those entries too (on PostgreSQL an assignment's status
change is not a HOT update, so each of its indexes takes a new entry). The wider index serves
every lookup by the key, the cascades included. Dropped by name, so that SQLite does not rebuild
the tables (the names are Django's, the same on both databases)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# (model, field, target, related_name, the field's own index, the index that covers it)
COVERED = [
    (
        "annotation",
        "sample",
        "annotation.sample",
        "annotations",
        "annotation_annotation_sample_id_2eac9f77",
        "unique (sample, annotator)",
    ),
    (
        "assignment",
        "annotator",
        settings.AUTH_USER_MODEL,
        "assignments",
        "annotation_assignment_annotator_id_5d071d66",
        "(annotator, project, status, submitted_at)",
    ),
    (
        "assignment",
        "item",
        "annotation.queueitem",
        "assignments",
        "annotation_assignment_item_id_21c60055",
        "(item, status, lease_expires_at)",
    ),
    (
        "assignment",
        "sample",
        "annotation.sample",
        "assignments",
        "annotation_assignment_sample_id_e80066e8",
        "unique (sample, annotator)",
    ),
    (
        "queueitem",
        "batch",
        "annotation.assignmentbatch",
        "items",
        "annotation_queueitem_batch_id_026f1688",
        "(batch, done, -priority, id) and unique (batch, sample)",
    ),
    (
        "samplecategory",
        "sample",
        "annotation.sample",
        "known_categories",
        "annotation_samplecategory_sample_id_6f5d7dae",
        "unique (sample, code)",
    ),
]


def table(model: str) -> str:
    return f"annotation_{model}"


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0013_assignment_project"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name=model,
                    name=field,
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name=related_name,
                        to=target,
                    ),
                )
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {index}",
                    f'CREATE INDEX {index} ON "{table(model)}" ("{field}_id")',
                )
            ],
        )
        for model, field, target, related_name, index, _ in COVERED
    ]
