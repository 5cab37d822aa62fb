"""Foreign keys that most rows leave empty are indexed only where set: an annotator's label names
no import batch, a final label from the annotators' majority neither a reviewer nor an import,
and each such row wrote a NULL entry into every one of those indexes. A partial index on the
imported labels' samples lets a pull ask "has this sample imported labels?" by a lookup: with the
full index the planner read the whole label table on every pull. The full indexes are dropped by
name (Django's, the same on both databases), so that SQLite does not rebuild the tables."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

IMPORTED = models.Q(import_batch__isnull=False)

# (model, field, target, related_name, the field's own index)
ONLY_WHERE_SET = [
    (
        "annotation",
        "import_batch",
        "annotation.importbatch",
        "annotations",
        "annotation_annotation_import_batch_id_af5c3e76",
    ),
    ("finallabel", "decided_by", settings.AUTH_USER_MODEL, "+", "annotation_finallabel_decided_by_id_a1f11d6b"),
    (
        "finallabel",
        "import_batch",
        "annotation.importbatch",
        "final_labels",
        "annotation_finallabel_import_batch_id_ae38ddd5",
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0016_annotatortally"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        *(
            migrations.SeparateDatabaseAndState(
                state_operations=[
                    migrations.AlterField(
                        model_name=model,
                        name=field,
                        field=models.ForeignKey(
                            blank=True,
                            db_index=False,
                            null=True,
                            on_delete=django.db.models.deletion.SET_NULL,
                            related_name=related_name,
                            to=target,
                        ),
                    )
                ],
                database_operations=[
                    migrations.RunSQL(
                        f"DROP INDEX IF EXISTS {index}",
                        f'CREATE INDEX {index} ON "annotation_{model}" ("{field}_id")',
                    )
                ],
            )
            for model, field, target, related_name, index in ONLY_WHERE_SET
        ),
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(condition=IMPORTED, fields=["import_batch"], name="annotation_import_batch"),
        ),
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(condition=IMPORTED, fields=["sample"], name="annotation_imported_sample"),
        ),
        migrations.AddIndex(
            model_name="finallabel",
            index=models.Index(
                condition=models.Q(decided_by__isnull=False), fields=["decided_by"], name="final_label_decided_by"
            ),
        ),
        migrations.AddIndex(
            model_name="finallabel",
            index=models.Index(condition=IMPORTED, fields=["import_batch"], name="final_label_import_batch"),
        ),
    ]
