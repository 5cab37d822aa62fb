"""A long queue's remaining items are not counted on every pull: while a project has plenty of
open items (counted at most once a second per process), a pull shows "1000+" uncounted; nearer
the end, and for an annotator with many finished open items, every pull counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation import selectors
from annotation.models import QueueItem
from annotation.services import add_member, create_assignment_batch, import_samples, pull_next_item, submit_annotation

pytestmark = pytest.mark.django_db
BOUND = 2  # "2+" shown past two; plenty of open items: 3 × 2 + 1 = 7


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    monkeypatch.setattr(selectors, "REMAINING_COUNTED_UP_TO", BOUND)
    fake = Clock()
    monkeypatch.setattr(selectors, "open_items_clock", fake)
    return fake


@pytest.fixture
def queue(project, django_user_model, tmp_path):
    """Twelve open items (k = 3) and three annotators."""
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"id": "s{i}", "prompt": "prompt {i}"}}\n' for i in range(12)), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="b")
    people = [django_user_model.objects.create_user(f"a{i}") for i in range(3)]
    for person in people:
        add_member(project, by=boss, username=person.username, role="annotator")
    return people


def pull_counting(person, project) -> tuple[dict, bool]:
    """The pull's progress, and whether it counted the project's open items."""
    with CaptureQueriesContext(connection) as captured:
        pulled = pull_next_item(person, project.pk)
    counted = any("SELECT 1 FROM annotation_queueitem q" in query["sql"] for query in captured.captured_queries)
    progress = selectors.progress_figures(pulled.submitted, pulled.submitted_today, pulled.membership.remaining, None)
    return {"pulled": pulled, **progress}, counted


def test_plenty_of_open_items_are_counted_once_a_second(project, queue, clock):
    first, counted = pull_counting(queue[0], project)
    assert counted and (first["remaining"], first["remaining_more"]) == (BOUND, True)
    submit_annotation(first["pulled"].assignment.pk, queue[0], prompt_label="safe")
    second, counted = pull_counting(queue[0], project)
    assert not counted and (second["remaining"], second["remaining_more"]) == (BOUND, True)
    # The queue nearly done by others: "2+" for the rest of the second, counted once it passes.
    QueueItem.objects.exclude(pk=second["pulled"].assignment.item_id).update(done=True)
    submit_annotation(second["pulled"].assignment.pk, queue[0], prompt_label="safe")
    stale, counted = pull_counting(queue[1], project)
    assert not counted and stale["remaining_more"]
    clock.now += selectors.OPEN_ITEMS_RECOUNT_SECONDS
    exact, counted = pull_counting(queue[2], project)
    assert counted and (exact["remaining"], exact["remaining_more"]) == (1, False)


def test_an_annotator_with_many_finished_open_items_is_counted(project, queue, clock):
    """Plenty open, but this annotator finished six of them (k = 3, not done): plenty less six
    would say 1; counted, the remaining six show as "2+"."""
    for _ in range(6):
        pulled = pull_next_item(queue[0], project.pk)
        submit_annotation(pulled.assignment.pk, queue[0], prompt_label="safe")
    progress, _ = pull_counting(queue[0], project)
    assert (progress["remaining"], progress["remaining_more"]) == (BOUND, True)
