"""The annotator workbench services: members, batches, leases, labels, revisions, wellbeing."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from annotation.labels import LabelError
from annotation.models import Annotation, AnnotationRevision, Assignment, FinalLabel, QueueItem, Sample
from annotation.services import (
    NoWork,
    add_member,
    create_assignment_batch,
    flag_assignment,
    import_samples,
    next_assignment,
    skip_assignment,
    submit_annotation,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_user("boss", password="pw-boss-123", is_staff=True)


@pytest.fixture
def team(django_user_model, project, boss):
    people = [django_user_model.objects.create_user(f"ann{i}", password="pw-ann-123") for i in range(4)]
    for person in people:
        add_member(project, by=boss, username=person.username, role="annotator")
    return people


@pytest.fixture
def queued(project, boss, shared_data, team):
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    return create_assignment_batch(project, by=boss, name="first", limit=5)


SAFE = {"prompt_label": "safe", "categories": []}


def label_all(user, project, labels=SAFE):
    done = []
    while True:
        try:
            assignment = next_assignment(user, project)
        except NoWork:
            return done
        submit_annotation(assignment.pk, user, **labels)
        done.append(assignment.sample_id)


def test_each_sample_goes_to_k_distinct_annotators(project, team, queued):
    for person in team:
        label_all(person, project)
    counts = [Annotation.objects.filter(sample=item.sample).count() for item in queued.items.all()]
    assert counts == [3] * 5
    assert all(item.done for item in QueueItem.objects.all())
    assert Assignment.objects.filter(status="submitted").count() == 15


def test_lease_is_resumed_and_expired_lease_returns_item(project, team, queued):
    first = next_assignment(team[0], project)
    assert next_assignment(team[0], project).pk == first.pk
    for person in team[1:3]:
        assert next_assignment(person, project).sample_id == first.sample_id
    # three places taken: the fourth annotator gets the next sample
    assert next_assignment(team[3], project).sample_id != first.sample_id
    Assignment.objects.filter(pk=first.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    submit_annotation(next_assignment(team[3], project).pk, team[3], **SAFE)
    assert next_assignment(team[3], project).sample_id == first.sample_id
    with pytest.raises(LabelError, match="lease expired"):
        submit_annotation(first.pk, team[0], **SAFE)


def test_skip_and_flag(project, team, queued):
    assignment = next_assignment(team[0], project)
    with pytest.raises(LabelError, match="say why"):
        skip_assignment(assignment.pk, team[0], reason=" ")
    flag_assignment(assignment.pk, team[0], reason="looks like a real threat")
    skip_assignment(assignment.pk, team[0], reason="too graphic for me today")
    assert next_assignment(team[0], project).sample_id != assignment.sample_id
    stored = Assignment.objects.get(pk=assignment.pk)
    assert (stored.status, stored.flagged, stored.skip_reason) == ("skipped", True, "too graphic for me today")


@pytest.mark.parametrize(
    "labels,field",
    [
        ({"prompt_label": "unsafe", "categories": []}, "categories"),
        ({"prompt_label": "safe", "categories": ["S1"]}, "categories"),
        ({"prompt_label": "maybe"}, "prompt_label"),
        ({"prompt_label": "unsafe", "categories": ["S99"]}, "categories"),
        ({"prompt_label": "safe", "response_label": "safe"}, "response_label"),
    ],
)
def test_label_rules_are_checked_on_the_server(project, team, queued, labels, field):
    assignment = next_assignment(team[0], project)
    with pytest.raises(LabelError) as caught:
        submit_annotation(assignment.pk, team[0], **labels)
    assert caught.value.field == field
    assert not Annotation.objects.filter(annotator=team[0]).exists()


def test_response_label_required_when_there_is_a_response(project, boss, team, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "hi", "response": "hello"}\n', encoding="utf-8")
    import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="dialogues")
    assignment = next_assignment(team[0], project)
    with pytest.raises(LabelError, match="response_label"):
        submit_annotation(assignment.pk, team[0], prompt_label="safe")
    submit_annotation(assignment.pk, team[0], prompt_label="needs_caution", response_label="unsafe", categories=["S10"])


def test_revisions_are_audited_until_final(project, team, queued):
    assignment = next_assignment(team[0], project)
    submit_annotation(assignment.pk, team[0], **SAFE, time_spent_ms=4000)
    submit_annotation(assignment.pk, team[0], prompt_label="unsafe", categories=["S1", "S11"], time_spent_ms=1000)
    annotation = Annotation.objects.get(annotator=team[0])
    assert (annotation.prompt_label, annotation.categories, annotation.time_spent_ms) == ("unsafe", ["S1", "S11"], 5000)
    revisions = list(AnnotationRevision.objects.filter(annotation=annotation))
    assert [r.old and r.old["prompt_label"] for r in revisions] == [None, "safe"]
    assert [r.new["prompt_label"] for r in revisions] == ["safe", "unsafe"]
    assert all(r.changed_by == team[0] for r in revisions)
    FinalLabel.objects.update_or_create(
        sample=annotation.sample, defaults={"prompt_label": "unsafe", "prompt_label_source": "human"}
    )
    with pytest.raises(LabelError, match="final"):
        submit_annotation(assignment.pk, team[0], **SAFE)


def test_no_one_touches_another_persons_assignment(project, team, queued):
    assignment = next_assignment(team[0], project)
    with pytest.raises(PermissionDenied):
        submit_annotation(assignment.pk, team[1], **SAFE)
    with pytest.raises(PermissionDenied):
        skip_assignment(assignment.pk, team[1], reason="x")


def test_only_annotators_pull_and_only_admins_manage(project, team, queued, django_user_model):
    outsider = django_user_model.objects.create_user("outsider")
    with pytest.raises(PermissionDenied):
        next_assignment(outsider, project)
    with pytest.raises(PermissionDenied):
        add_member(project, by=team[0], username="outsider", role="annotator")
    with pytest.raises(PermissionDenied):
        create_assignment_batch(project, by=team[0], name="mine")


def test_daily_cap(project, boss, team, queued):
    add_member(project, by=boss, username=team[0].username, role="annotator", daily_cap=2)
    assert len(label_all(team[0], project)) == 2
    with pytest.raises(NoWork, match="daily cap of 2"):
        next_assignment(team[0], project)


def test_opted_out_categories_are_never_assigned(project, boss, team, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"id": "minor", "prompt": "x", "prompt_label": "unsafe", "categories": ["S7"]}\n'
        '{"id": "plain", "prompt": "y"}\n',
        encoding="utf-8",
    )
    import_samples(project, path, adapter="generic")
    add_member(project, by=boss, username=team[0].username, role="annotator", opted_out_categories=["S7"])
    create_assignment_batch(project, by=boss, name="b")
    assert [Sample.objects.get(pk=pk).uid for pk in label_all(team[0], project)] == ["plain"]
    assert Sample.objects.get(uid="minor").pk in label_all(team[1], project)


def test_batches_never_queue_a_sample_twice(project, boss, queued):
    second = create_assignment_batch(project, by=boss, name="second", limit=10)
    first_ids = set(queued.items.values_list("sample_id", flat=True))
    assert not first_ids & set(second.items.values_list("sample_id", flat=True))
