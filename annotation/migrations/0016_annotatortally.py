"""Each annotator's submissions in a project are tallied as they are made: a pull reads two
numbers instead of counting the annotator's history (README "Benchmarks")."""

from datetime import datetime, time

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Count, Max
from django.utils import timezone


def tally_past_submissions(apps, schema_editor):
    """One tally per annotator and project with submissions: in all, and on their last day."""
    Assignment = apps.get_model("annotation", "Assignment")
    AnnotatorTally = apps.get_model("annotation", "AnnotatorTally")
    submitted = Assignment.objects.filter(status="submitted")
    tallies = []
    for group in submitted.values("project_id", "annotator_id").annotate(n=Count("pk"), last=Max("submitted_at")):
        day = timezone.localdate(group["last"]) if group["last"] else None
        on_day = 0
        if day is not None:
            start = timezone.make_aware(datetime.combine(day, time.min))
            on_day = submitted.filter(
                project_id=group["project_id"], annotator_id=group["annotator_id"], submitted_at__gte=start
            ).count()
        tallies.append(
            AnnotatorTally(
                project_id=group["project_id"],
                annotator_id=group["annotator_id"],
                submitted=group["n"],
                day=day,
                submitted_on_day=on_day,
            )
        )
    AnnotatorTally.objects.bulk_create(tallies, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0015_assignment_item_done"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AnnotatorTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("submitted", models.PositiveIntegerField(default=0)),
                ("day", models.DateField(null=True)),
                ("submitted_on_day", models.PositiveIntegerField(default=0)),
                (
                    "annotator",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="annotation.project",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("project", "annotator"), name="annotator_tally_unique")
                ],
            },
        ),
        migrations.RunPython(tally_past_submissions, migrations.RunPython.noop),
    ]
