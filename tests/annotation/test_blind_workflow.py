"""Blind labelling stays blind: content warnings never come from peers' open labels, and samples a
reviewer (or the annotators' majority) made final are never handed out again."""

import pytest

from annotation.models import Assignment, QueueItem, Sample
from annotation.selectors import workbench_view
from annotation.services import (
    NoWork,
    add_member,
    adjudicate,
    create_assignment_batch,
    import_samples,
    next_assignment,
    submit_annotation,
)

pytestmark = pytest.mark.django_db

ROWS = (
    '{"id": "bread", "prompt": "How do I bake banana bread?"}\n'
    '{"id": "imported", "prompt": "a prompt", "prompt_label": "unsafe", "categories": ["S6"]}\n'
    '{"id": "plain", "prompt": "What is the capital of France?"}\n'
)


@pytest.fixture
def team(project, django_user_model, tmp_path):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    people = [django_user_model.objects.create_user(f"ann{i}") for i in range(3)]
    for person in people:
        add_member(project, by=boss, username=person.username, role="annotator")
    add_member(project, by=boss, username="boss", role="reviewer")
    path = tmp_path / "rows.jsonl"
    path.write_text(ROWS, encoding="utf-8")
    import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="b")
    return boss, people


def pull(person, project, uid: str) -> Assignment:
    """Pulls (skipping others' items by labelling them safe) until the sample with this uid comes."""
    while True:
        assignment = next_assignment(person, project)
        if assignment.sample.uid == uid:
            return assignment
        submit_annotation(assignment.pk, person, prompt_label="safe")


def test_a_peers_open_label_never_shows_as_a_content_warning(project, team):
    _, (first, second, _) = team
    mine = pull(first, project, "bread")
    submit_annotation(mine.pk, first, prompt_label="unsafe", categories=["S8"])
    theirs = pull(second, project, "bread")
    assert workbench_view(theirs)["content_warning"] == []
    # the annotator's own submitted label shows again, still without a warning from it
    view = workbench_view(Assignment.objects.get(pk=mine.pk))
    assert view["annotation"]["categories"] == ["S8"] and view["content_warning"] == []


def test_content_warnings_come_from_imported_and_final_labels(project, team):
    boss, (first, second, _) = team
    imported = pull(first, project, "imported")
    assert workbench_view(imported)["content_warning"] == ["Suicide and Self Harm"]
    plain = Sample.objects.get(uid="plain")
    adjudicate(project, plain.pk, boss, prompt_label="unsafe", categories=["S1"])
    assert workbench_view(Assignment(sample=plain, annotator=second))["content_warning"] == ["Violence"]


def test_a_finalised_sample_is_never_handed_out(project, team):
    boss, (first, second, third) = team
    bread = Sample.objects.get(uid="bread")
    held = pull(first, project, "bread")  # a lease taken before the reviewer decides
    adjudicate(project, bread.pk, boss, prompt_label="safe")
    assert QueueItem.objects.get(sample=bread).done
    for person in (first, second, third):
        handed = []
        while True:
            try:
                assignment = next_assignment(person, project)
            except NoWork:
                break
            handed.append(assignment.sample.uid)
            submit_annotation(assignment.pk, person, prompt_label="safe")
        assert "bread" not in handed, person
    assert Assignment.objects.get(pk=held.pk).status == "leased"  # never submitted: the sample was final
