"""Twelve annotators pulling and submitting at once: nothing lost, nothing over-assigned."""

import threading
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from annotation.models import Annotation, Assignment, QueueItem
from annotation.services import (
    NoWork,
    add_member,
    create_assignment_batch,
    create_project,
    import_samples,
    next_assignment,
    submit_annotation,
)


def next_then_submit(person, project, submitted: Counter) -> None:
    """The loop as next, then submit: until the queue is empty."""
    while True:
        try:
            assignment = next_assignment(person, project)
        except NoWork:
            return
        submit_annotation(assignment.pk, person, prompt_label="safe", categories=[])
        submitted[(assignment.sample_id, person.pk)] += 1


def submit_then_next(person, project, submitted: Counter) -> None:
    """The loop as the labelling page runs it, through the API: each submission answers the next item."""
    client = APIClient()
    client.force_authenticate(person)
    view = client.post(f"/api/projects/{project.pk}/next/").json()
    while "assignment" in view:
        answer = client.post(
            f"/api/assignments/{view['assignment']['id']}/submit/?then=next", {"prompt_label": "safe"}, format="json"
        )
        assert answer.status_code == 200, answer.content
        submitted[(view["sample"]["id"], person.pk)] += 1
        view = answer.json()["next"]
    assert view["no_work"] == "no items left in your queue", view


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("loop", [next_then_submit, submit_then_next])
def test_twelve_annotators_at_once(django_user_model, shared_data, loop):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    project = create_project(name="Load", slug="load")
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    create_assignment_batch(project, by=boss, name="b", limit=20)
    people = [django_user_model.objects.create_user(f"a{i}") for i in range(12)]
    for person in people:
        add_member(project, by=boss, username=person.username, role="annotator")
    submitted: Counter = Counter()
    errors: list[BaseException] = []

    def work(person) -> None:
        try:
            loop(person, project, submitted)
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    per_sample = Counter(Annotation.objects.filter(sample__project=project).values_list("sample_id", flat=True))
    assert set(per_sample.values()) == {3} and len(per_sample) == 20
    assert sum(submitted.values()) == 60 == Annotation.objects.count() == len(submitted)
    assert Assignment.objects.filter(status="submitted").count() == 60
    assert QueueItem.objects.filter(done=True).count() == 20
