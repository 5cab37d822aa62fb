"""A pull counts the remaining items by walking the open ones, never the queue's done items: with
statistics from before most of the queue was done (as without auto-analyze), a scan of the queue
read every done item on every pull, slower as the work got done."""

import json

import pytest
from django.db import connection
from django.utils import timezone

from annotation import hot_path as sql
from annotation.models import QueueItem
from annotation.selectors import remaining_bound
from annotation.services import add_member, create_assignment_batch, import_samples

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def queue_rows_read(plan: dict) -> int:
    """Rows the plan read from the queue table: those it kept and those its filters removed."""
    rows = 0
    if plan.get("Relation Name") == "annotation_queueitem":
        rows += plan["Actual Rows"] * plan["Actual Loops"] + plan.get("Rows Removed by Filter", 0)
    return rows + sum(queue_rows_read(child) for child in plan.get("Plans", []))


def test_the_remaining_count_reads_only_open_items(project, django_user_model, shared_data):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    create_assignment_batch(project, by=boss, name="b")
    person = django_user_model.objects.create_user("ann")
    add_member(project, by=boss, username="ann", role="annotator")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_queueitem")  # statistics from when every item was open
    items = list(QueueItem.objects.order_by("id").values_list("id", flat=True))
    open_items = 50
    QueueItem.objects.filter(id__in=items[:-open_items]).update(done=True)
    now = timezone.now()
    params = {
        "project": project.pk,
        "user": person.pk,
        "now": sql.when(now),
        "today": sql.day(timezone.localdate()),
        "bound": remaining_bound(),
        "false": False,
    }
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql.membership_statement(), params)
        plan = cursor.fetchone()[0]
    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    assert len(items) > 400
    assert queue_rows_read(plan) == open_items
