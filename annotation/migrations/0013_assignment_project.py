"""Assignments carry their sample's project, and an annotator's assignments in a project are one
index range (with the item, so that the counts of a pull read no table): the submitted counts
and the remaining items of every pull no longer join the samples (README "Benchmarks")."""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = (
    "UPDATE annotation_assignment SET project_id = "
    "(SELECT s.project_id FROM annotation_sample s WHERE s.id = annotation_assignment.sample_id)"
)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0012_sample_project_index_covered")]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="annotation.project",
            ),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="assignment",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="annotation.project",
            ),
        ),
        migrations.RemoveIndex(model_name="assignment", name="assignment_annotator_status"),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                fields=["annotator", "project", "status", "submitted_at"],
                include=("item",),
                name="assignment_annotator_project",
            ),
        ),
    ]
