"""Assignments know when their item is done, and an annotator's finished assignments on open items
are a small partial index: a pull's remaining count no longer looks up the item of every
assignment the annotator ever finished (README "Benchmarks")."""

from django.conf import settings
from django.db import migrations, models

BACKFILL = (
    "UPDATE annotation_assignment SET item_done = TRUE WHERE item_id IN "
    "(SELECT q.id FROM annotation_queueitem q WHERE q.done)"
)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0014_drop_covered_foreign_key_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="item_done",
            field=models.BooleanField(db_default=False),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                condition=models.Q(("item_done", False), ("status__in", ["submitted", "skipped"])),
                fields=["annotator", "project"],
                include=("item",),
                name="assignment_finished_open",
            ),
        ),
    ]
