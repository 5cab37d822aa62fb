"""The labelling page's reads: one's labels still open to revision, and what is left in the queue."""

import pytest
from rest_framework.test import APIClient

from annotation import selectors
from annotation.models import Sample
from annotation.services import (
    add_member,
    adjudicate,
    create_assignment_batch,
    import_samples,
    next_assignment,
    submit_annotation,
)

pytestmark = pytest.mark.django_db


def test_my_labels_pages_newest_first_and_leaves_out_final_samples(project, django_user_model, tmp_path, monkeypatch):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    ann = django_user_model.objects.create_user("ann")
    add_member(project, by=boss, username="ann", role="annotator")
    add_member(project, by=boss, username="boss", role="reviewer")
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"id": "s{i:02}", "prompt": "<b>p{i}</b>"}}\n' for i in range(25)), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="b")
    for _ in range(23):
        submit_annotation(next_assignment(ann, project).pk, ann, prompt_label="safe")
    adjudicate(project, Sample.objects.get(uid="s22").pk, boss, prompt_label="unsafe", categories=["S1"])
    client = APIClient()
    client.force_authenticate(ann)
    first = client.get(f"/api/projects/{project.pk}/my-labels/").json()
    assert [row["uid"] for row in first] == [f"s{i:02}" for i in range(21, 1, -1)]  # s22 is final
    assert first[0]["prompt"] == "<b>p21</b>" and first[0]["prompt_label"] == "safe"
    older = client.get(f"/api/projects/{project.pk}/my-labels/", {"before": first[-1]["id"]}).json()
    assert [row["uid"] for row in older] == ["s01", "s00"]
    assert client.get(f"/api/projects/{project.pk}/my-labels/", {"before": "x"}).status_code == 400
    progress = client.post(f"/api/projects/{project.pk}/next/").json()["progress"]
    assert (progress["submitted"], progress["remaining"], progress["remaining_more"]) == (23, 2, False)
    monkeypatch.setattr(selectors, "REMAINING_COUNTED_UP_TO", 1)  # counting stops early on a long queue
    progress = client.post(f"/api/projects/{project.pk}/next/").json()["progress"]
    assert (progress["remaining"], progress["remaining_more"]) == (1, True)
    client.force_authenticate(boss)
    assert client.get(f"/api/projects/{project.pk}/my-labels/").status_code == 403


def test_remaining_leaves_out_what_one_submitted_or_skipped_of_items_still_open(django_user_model, tmp_path):
    """k = 2: items one annotator finished stay open for the second; they are not theirs to do."""
    from annotation.services import create_project, pull_next_item, skip_assignment

    project = create_project(name="Two each", slug="two-each", annotations_per_sample=2)
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    first, second = (django_user_model.objects.create_user(name) for name in ("first", "second"))
    for person in (first, second):
        add_member(project, by=boss, username=person.username, role="annotator")
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"id": "s{i}", "prompt": "p{i}"}}\n' for i in range(5)), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="b")
    for _ in range(3):
        submit_annotation(next_assignment(first, project).pk, first, prompt_label="safe")
    skip_assignment(next_assignment(first, project).pk, first, reason="unsure")
    pulled = pull_next_item(first, project.pk)
    assert (pulled.submitted, pulled.membership.remaining) == (3, 1)  # 5 open, 3 submitted, 1 skipped
    assert pull_next_item(second, project.pk).membership.remaining == 5
    # The second annotator completes the first's three items: their assignments are told the items
    # are done, and they leave the partial index a pull's remaining count reads.
    for _ in range(3):
        submit_annotation(next_assignment(second, project).pk, second, prompt_label="safe")
    from annotation.models import Assignment

    firsts = Assignment.objects.filter(annotator=first)
    assert sorted(firsts.values_list("status", "item_done")) == [
        ("leased", False), ("skipped", False), ("submitted", True), ("submitted", True), ("submitted", True)
    ]  # fmt: skip
    assert not Assignment.objects.filter(annotator=second, status="submitted", item_done=False).exists()
    assert pull_next_item(first, project.pk).membership.remaining == 1
    # A flag not set (a row another transaction held at that moment) costs a lookup, not a wrong count.
    firsts.filter(status="submitted").update(item_done=False)
    assert pull_next_item(first, project.pk).membership.remaining == 1
