"""The annotator workbench services: members, batches, leases, labels, revisions, wellbeing."""

import importlib
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from annotation.labels import LabelError
from annotation.models import Annotation, AnnotationRevision, AnnotatorTally, Assignment, FinalLabel, QueueItem, Sample
from annotation.selectors import annotator_progress
from annotation.services import (
    NoWork,
    add_member,
    create_assignment_batch,
    flag_assignment,
    import_samples,
    next_assignment,
    pull_next_item,
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


def tally(person, project) -> tuple:
    found = AnnotatorTally.objects.get(project=project, annotator=person)
    return found.submitted, found.day, found.submitted_on_day


def test_the_daily_count_starts_again_on_a_new_day(project, boss, team, queued):
    """The annotator's tally keeps the day of their last submission: a new day counts from one,
    and the cap lets them work again; the page's progress says the same."""
    add_member(project, by=boss, username=team[0].username, role="annotator", daily_cap=2)
    label_all(team[0], project)
    today = timezone.localdate()
    assert tally(team[0], project) == (2, today, 2)
    AnnotatorTally.objects.filter(annotator=team[0]).update(day=today - timedelta(days=1))  # as if yesterday
    pulled = pull_next_item(team[0], project.pk)
    assert (pulled.submitted, pulled.submitted_today) == (2, 0)
    submit_annotation(pulled.assignment.pk, team[0], prompt_label="safe")
    assert tally(team[0], project) == (3, today, 1)
    progress = annotator_progress(team[0].pk, project, None)
    assert (progress["submitted"], progress["submitted_today"]) == (3, 1)


def test_a_submission_dated_before_the_tallys_day_keeps_that_day(project, boss, team, queued):
    """Two tabs at midnight: a submission timed just before it may commit after one timed just
    after. The tally keeps the later day and its count, and counts the submission in all."""
    assignment = next_assignment(team[0], project)
    tomorrow = timezone.localdate() + timedelta(days=1)
    AnnotatorTally.objects.create(project=project, annotator=team[0], submitted=5, day=tomorrow, submitted_on_day=4)
    submit_annotation(assignment.pk, team[0], prompt_label="safe")
    assert tally(team[0], project) == (6, tomorrow, 4)


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


def test_the_migration_tallies_past_submissions(project, boss, team, queued):
    """Projects labelled before tallies existed get theirs from their submitted assignments."""
    from django.apps import apps

    backfill = importlib.import_module("annotation.migrations.0016_annotatortally").tally_past_submissions
    label_all(team[0], project)
    label_all(team[1], project)
    Assignment.objects.filter(annotator=team[1]).update(submitted_at=timezone.now() - timedelta(days=3))
    earlier = Assignment.objects.filter(annotator=team[1]).order_by("pk").first()
    Assignment.objects.filter(pk=earlier.pk).update(submitted_at=timezone.now() - timedelta(days=4))
    AnnotatorTally.objects.all().delete()
    backfill(apps, None)
    done = Assignment.objects.filter(status="submitted")
    n0, n1 = done.filter(annotator=team[0]).count(), done.filter(annotator=team[1]).count()
    assert n0 > 0 and n1 > 1
    assert tally(team[0], project) == (n0, timezone.localdate(), n0)
    three_days_ago = timezone.localdate(timezone.now() - timedelta(days=3))
    assert tally(team[1], project) == (n1, three_days_ago, n1 - 1)
