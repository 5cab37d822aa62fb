"""The sample's project foreign key loses its own index: the unique (project, uid) index serves every
lookup by project, and an import no longer maintains a seventh index. The index is dropped by name, not
by AlterField, so that SQLite does not rebuild the table (which would drop its full-text triggers)."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "annotation_sample_project_id_7a2d8fd8"


class Migration(migrations.Migration):
    dependencies = [("annotation", "0011_sample_search_document_deferrable")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="sample",
                    name="project",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="samples",
                        to="annotation.project",
                    ),
                )
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {INDEX}",
                    f'CREATE INDEX {INDEX} ON "annotation_sample" ("project_id")',
                )
            ],
        )
    ]
