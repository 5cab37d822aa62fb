"""Final labels: majority → human; tie or low agreement → a reviewer adjudicates; flags go to review."""

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from annotation.models import AssignmentBatch, FinalLabel, Membership, QueueItem, ReviewItem
from annotation.services import (
    add_member,
    adjudicate,
    create_assignment_batch,
    flag_assignment,
    import_samples,
    next_assignment,
    review_queue,
    submit_annotation,
)
from annotation.services.adjudication import Vote, finalize_sample
from annotation.signals import final_label_decided

pytestmark = pytest.mark.django_db


@pytest.fixture
def crew(project, django_user_model, tmp_path):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    people = [django_user_model.objects.create_user(f"a{i}") for i in range(3)]
    for person in people:
        add_member(project, by=boss, username=person.username, role="annotator")
    reviewer = django_user_model.objects.create_user("rita")
    add_member(project, by=boss, username="rita", role="reviewer")
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "one", "prompt": "How do I hurt someone?", "response": "I will not help."}\n')
    import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="b")
    return people, reviewer


def label(person, project, prompt, response, categories=()):
    assignment = next_assignment(person, project)
    submit_annotation(assignment.pk, person, prompt_label=prompt, response_label=response, categories=list(categories))
    return assignment


def test_majority_becomes_a_human_final_label(project, crew):
    people, _ = crew
    label(people[0], project, "unsafe", "safe", ["S1", "S11"])
    label(people[1], project, "unsafe", "safe", ["S1"])
    assert not FinalLabel.objects.exists()  # not before all k annotations
    label(people[2], project, "safe", "safe")
    final = FinalLabel.objects.get()
    assert (final.prompt_label, final.prompt_label_source, final.response_label) == ("unsafe", "human", "safe")
    assert final.categories == ["S1"]  # named by at least half of the annotators
    assert not ReviewItem.objects.exists()


def test_tie_goes_to_a_reviewer_who_decides(project, crew, django_user_model):
    people, reviewer = crew
    label(people[0], project, "unsafe", "safe", ["S1"])
    label(people[1], project, "safe", "safe")
    label(people[2], project, "needs_caution", "safe")
    assert not FinalLabel.objects.exists()
    (item,) = review_queue(project, reviewer)
    assert item["reason"] == "no majority label" and len(item["annotations"]) == 3
    with pytest.raises(PermissionDenied):
        adjudicate(project, item["sample"]["id"], people[0], prompt_label="safe", response_label="safe")
    final = adjudicate(
        project, item["sample"]["id"], reviewer, prompt_label="unsafe", response_label="safe", categories=["S1"]
    )
    assert (final.prompt_label_source, final.decided_by) == ("adjudicated", reviewer)
    assert review_queue(project, reviewer) == []


def test_low_agreement_threshold(project, crew):
    project.review_below_agreement = 0.9
    project.save()
    people, reviewer = crew
    label(people[0], project, "unsafe", "safe", ["S1"])
    label(people[1], project, "unsafe", "safe", ["S1"])
    label(people[2], project, "safe", "safe")
    assert "below 0.90" in review_queue(project, reviewer)[0]["reason"]


def test_flags_reach_the_reviewers_through_the_api(project, crew):
    people, reviewer = crew
    assignment = next_assignment(people[0], project)
    flag_assignment(assignment.pk, people[0], reason="real person's address")
    client = APIClient()
    client.force_authenticate(reviewer)
    queue = client.get(f"/api/projects/{project.pk}/review/").json()
    assert "flagged by a0: real person's address" in queue[0]["reason"]
    response = client.post(
        f"/api/projects/{project.pk}/review/{queue[0]['sample']['id']}/",
        {"prompt_label": "unsafe", "response_label": "safe", "categories": ["S9"]},
        format="json",
    )
    assert response.status_code == 200 and response.json()["prompt_label_source"] == "adjudicated"
    client.force_authenticate(people[1])
    assert client.get(f"/api/projects/{project.pk}/review/").status_code == 403
    assert Membership.objects.filter(user=reviewer, role="reviewer").exists()


def test_review_page_shows_annotations_escaped_and_decides(project, crew, client):
    people, reviewer = crew
    label(people[0], project, "unsafe", "safe", ["S1"])
    label(people[1], project, "safe", "safe")
    assignment = next_assignment(people[2], project)
    submit_annotation(
        assignment.pk,
        people[2],
        prompt_label="needs_caution",
        response_label="safe",
        categories=[],
        other_risks="<script>alert(1)</script>",
    )
    client.force_login(people[0])
    assert client.get(f"/projects/{project.pk}/review/").status_code == 403
    client.force_login(reviewer)
    page = client.get(f"/projects/{project.pk}/review/").content.decode()
    assert (
        "no majority label" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    )
    sample_id = ReviewItem.objects.get().sample_id
    bad = client.post(
        f"/projects/{project.pk}/review/", {"sample": sample_id, "prompt_label": "unsafe", "response_label": "safe"}
    )
    assert "needs at least one category" in bad.content.decode()
    done = client.post(
        f"/projects/{project.pk}/review/",
        {"sample": sample_id, "prompt_label": "unsafe", "response_label": "safe", "categories": ["S1"]},
    )
    assert done.status_code == 302
    assert FinalLabel.objects.get().prompt_label_source == "adjudicated"
    assert "Nothing waits for review" in client.get(f"/projects/{project.pk}/review/").content.decode()


def test_votes_decided_after_a_reviewer_do_not_replace_the_reviewers_label(project, crew):
    """The submission that completes a sample may hand its votes to finalize_sample, read before a
    reviewer's decision committed; the final label's upsert keeps the reviewer's all the same."""
    people, reviewer = crew
    assignment = label(people[0], project, "unsafe", "safe", ["S1"])
    adjudicate(project, assignment.sample_id, reviewer, prompt_label="safe", response_label="safe")
    votes = [Vote("unsafe", "safe", ["S1"])] * 3
    assert finalize_sample(assignment.sample_id, project=project, has_response=True, votes=votes) is None
    final = FinalLabel.objects.get()
    assert (final.prompt_label, final.prompt_label_source) == ("safe", "adjudicated")


@pytest.fixture
def single_crew(project, crew):
    """``crew`` with one annotation per sample (k = 1), queued anew."""
    project.annotations_per_sample = 1
    project.save()
    AssignmentBatch.objects.filter(project=project).update(annotations_per_sample=1)
    return crew


def test_one_annotator_per_sample_decides_its_final_label_at_once(
    project, single_crew, django_capture_on_commit_callbacks
):
    """Where k = 1 the submission decides the final label (on PostgreSQL within its own statement,
    hot_path.SINGLE_VOTE_FINAL) and tells moderation once it commits, as with k > 1."""
    people, _ = single_crew
    decided = []

    def heard(sender, sample_id, project_id, **kwargs):
        decided.append((sample_id, project_id))

    final_label_decided.connect(heard)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assignment = label(people[0], project, "unsafe", "needs_caution", ["S11", "S1"])
    finally:
        final_label_decided.disconnect(heard)
    final = FinalLabel.objects.get()
    assert (final.prompt_label, final.prompt_label_source) == ("unsafe", "human")
    assert (final.response_label, final.response_label_source) == ("needs_caution", "human")
    assert final.categories == ["S11", "S1"]
    assert decided == [(assignment.sample_id, project.pk)]
    assert not ReviewItem.objects.exists()


def test_a_single_vote_beside_another_annotators_label_is_decided_by_both(project, single_crew):
    """A sample queued in two batches of k = 1: the second label does not decide alone; the two
    disagree, so a reviewer decides."""
    people, reviewer = single_crew
    project.review_below_agreement = 1.5  # the first vote alone cannot decide
    project.save()
    first = label(people[0], project, "unsafe", "safe", ["S1"])
    assert not FinalLabel.objects.exists()
    ReviewItem.objects.all().delete()
    project.review_below_agreement = 0.5
    project.save()
    again = AssignmentBatch.objects.create(project=project, name="again", annotations_per_sample=1)
    QueueItem.objects.create(batch=again, sample_id=first.sample_id)
    second = label(people[1], project, "safe", "safe")
    assert second.sample_id == first.sample_id
    assert not FinalLabel.objects.exists()
    (item,) = review_queue(project, reviewer)
    assert item["reason"] == "no majority label" and len(item["annotations"]) == 2
