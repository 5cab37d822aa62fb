"""A pull's commit does not wait for the WAL flush (a lease is cheap to lose); a submission's does."""

import pytest
from django.db import connection, transaction

from annotation.services import (
    add_member,
    create_assignment_batch,
    create_project,
    import_samples,
    pull_next_item,
    submit_annotation,
)


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_only_the_pull_commits_without_waiting_for_the_flush(django_user_model, shared_data):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    project = create_project(name="Durability", slug="durability")
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    create_assignment_batch(project, by=boss, name="b", limit=2)
    person = django_user_model.objects.create_user("ann")
    add_member(project, by=boss, username="ann", role="annotator")
    assert synchronous_commit() == "on"
    with transaction.atomic():
        pull = pull_next_item(person, project.pk)
        assert synchronous_commit() == "off"
    assert synchronous_commit() == "on"  # SET LOCAL: that transaction only
    with transaction.atomic():
        submit_annotation(pull.assignment.pk, person, prompt_label="safe")
        assert synchronous_commit() == "on"
