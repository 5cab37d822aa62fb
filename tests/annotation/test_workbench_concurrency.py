"""Twelve annotators pulling and submitting at once: nothing lost, nothing over-assigned."""

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.labels import FINAL_LABEL_SOURCES
from annotation.models import Annotation, AnnotatorTally, Assignment, FinalLabel, Membership, QueueItem, ReviewItem
from annotation.services import (
    NoWork,
    Pull,
    add_member,
    adjudicate,
    create_assignment_batch,
    create_project,
    import_samples,
    next_assignment,
    pull_next_item,
    submit_and_pull_next,
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


def queued_project(users, shared_data, slug: str, *, items: int, annotators: int = 1, k: int | None = None):
    """A project with ``items`` XSTest prompts queued (k from the project unless given) and its
    annotators a0, a1, …; returns (project, annotators)."""
    boss = users.objects.create_user("boss", is_staff=True)
    project = create_project(name=slug.title(), slug=slug)
    if k is not None:
        project.annotations_per_sample = k
        project.save()
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    create_assignment_batch(project, by=boss, name="b", limit=items)
    people = [users.objects.create_user(f"a{i}") for i in range(annotators)]
    for person in people:
        add_member(project, by=boss, username=person.username, role="annotator")
    return project, people


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("loop", [next_then_submit, submit_then_next])
def test_twelve_annotators_at_once(django_user_model, shared_data, loop):
    project, people = queued_project(django_user_model, shared_data, "load", items=20, annotators=12)
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
    per_annotator = Counter(person for _, person in submitted.elements())
    tallies = {t.annotator_id: (t.submitted, t.submitted_on_day) for t in AnnotatorTally.objects.all()}
    assert tallies == {person: (n, n) for person, n in per_annotator.items()}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_pull_waits_for_an_open_item_that_another_transaction_holds(django_user_model, shared_data):
    """The last open item, locked for a moment by someone else's pull or submission, is waited
    for: a pull that passed over it (SKIP LOCKED) used to answer "no items left"."""
    project, (person,) = queued_project(django_user_model, shared_data, "tail", items=1)
    (item,) = QueueItem.objects.all()
    pulled, _ = run_while_held(
        lambda: QueueItem.objects.select_for_update().get(pk=item.pk), lambda: pull_next_item(person, project.pk)
    )
    assert isinstance(pulled, Pull), pulled
    assert pulled.assignment.item_id == item.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_last_vote_counts_one_committed_while_it_waited(django_user_model, shared_data):
    """Two annotators submit an item's two votes (k = 2) at once: the second waits for the first's
    count. Its statement's snapshot, taken before that wait, lacks the first vote, so the final
    label must be decided on the votes read again: one says unsafe, the other safe, no majority."""
    project, (first, second) = queued_project(django_user_model, shared_data, "votes", items=1, annotators=2, k=2)
    leases = [next_assignment(person, project) for person in (first, second)]
    assert leases[0].sample_id == leases[1].sample_id
    second_vote, _ = run_while_held(
        lambda: submit_annotation(leases[0].pk, first, prompt_label="unsafe", categories=["S1"]),
        lambda: submit_annotation(leases[1].pk, second, prompt_label="safe", categories=[]),
    )
    assert not isinstance(second_vote, BaseException), second_vote
    assert QueueItem.objects.get().submitted_count == 2
    final = FinalLabel.objects.filter(sample_id=leases[0].sample_id).first()
    assert final is None or final.prompt_label_source not in FINAL_LABEL_SOURCES, final.__dict__
    assert ReviewItem.objects.get(sample_id=leases[0].sample_id).reason == "no majority label"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_single_vote_does_not_replace_a_reviewers_label_committed_while_it_waited(django_user_model, shared_data):
    """k = 1: a reviewer settles the sample while its one annotator submits. The submission read
    the sample as not final; its statement's final label (hot_path.SINGLE_VOTE_FINAL) meets the
    reviewer's once that commits, and keeps it; the label itself is stored."""
    project, (person,) = queued_project(django_user_model, shared_data, "settled", items=1, k=1)
    reviewer = django_user_model.objects.create_user("rita")
    add_member(project, by=django_user_model.objects.get(username="boss"), username="rita", role="reviewer")
    lease = next_assignment(person, project)
    submitted, _ = run_while_held(
        lambda: adjudicate(project, lease.sample_id, reviewer, prompt_label="safe"),
        lambda: submit_annotation(lease.pk, person, prompt_label="unsafe", categories=["S1"]),
    )
    assert not isinstance(submitted, BaseException), submitted
    final = FinalLabel.objects.get(sample_id=lease.sample_id)
    assert (final.prompt_label, final.prompt_label_source, final.decided_by) == ("safe", "adjudicated", reviewer)
    assert Annotation.objects.get(sample_id=lease.sample_id, annotator=person).prompt_label == "unsafe"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("held", ["membership", "last item"])
def test_a_submission_commits_before_its_pull_waits(django_user_model, shared_data, held):
    """submit?then=next pulls within the submission's transaction only where it need not wait. With
    the annotator's membership held by another of their pulls, or the last open item held by
    someone else, the label is committed first (seen from another connection while the pull
    waits), then the pull waits and gets its item."""
    project, (person,) = queued_project(django_user_model, shared_data, "wait", items=2)
    lease = next_assignment(person, project)
    (last,) = QueueItem.objects.exclude(pk=lease.item_id)

    def hold() -> None:
        if held == "membership":
            Membership.objects.select_for_update().get(project=project, user=person)
        else:
            QueueItem.objects.select_for_update().get(pk=last.pk)

    answer, stored_while_waiting = run_while_held(
        hold,
        lambda: submit_and_pull_next(lease.pk, person, prompt_label="safe", categories=[]),
        while_waiting=lambda: Annotation.objects.filter(sample_id=lease.sample_id, annotator=person).exists(),
    )
    assert stored_while_waiting
    assert isinstance(answer, tuple), answer
    _, pulled = answer
    assert isinstance(pulled, Pull) and pulled.assignment.item_id == last.pk, pulled


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_pull_within_a_submission_leaves_the_annotators_expired_lease(django_user_model, shared_data):
    """The annotator's expired lease on the first open item, its row held by another of their tabs
    (submitting it late): the pull within a submission's transaction takes the next item rather
    than wait to renew that lease while holding the submission's locks."""
    project, (person,) = queued_project(django_user_model, shared_data, "tabs", items=3, k=1)
    first, second, third = QueueItem.objects.order_by("pk")
    expired = next_assignment(person, project)
    assert expired.item_id == first.pk
    Assignment.objects.filter(pk=expired.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    QueueItem.objects.filter(pk=second.pk).update(priority=1)  # the next pull takes the second item
    lease = next_assignment(person, project)
    assert lease.item_id == second.pk
    QueueItem.objects.filter(pk=second.pk).update(priority=0)  # the first one is first again

    answer, waited = run_while_held(
        lambda: Assignment.objects.select_for_update().get(pk=expired.pk),
        lambda: submit_and_pull_next(lease.pk, person, prompt_label="safe", categories=[]),
        while_waiting=waiting_on_a_lock,
    )
    assert not waited
    assert isinstance(answer, tuple), answer
    assert answer[1].assignment.item_id == third.pk


def run_while_held(hold: Callable[[], object], act: Callable[[], object], *, while_waiting=lambda: None):
    """Runs ``hold`` in a transaction of its own thread, then ``act`` in another thread; once
    ``act`` waits on a lock (or has ended), calls ``while_waiting`` here, then lets the holding
    transaction commit. Returns what ``act`` returned (or raised) and what ``while_waiting`` did."""
    locked, release = threading.Event(), threading.Event()
    acted: list = []
    failed: list[BaseException] = []

    def holder() -> None:
        try:
            with transaction.atomic():
                hold()
                locked.set()
                release.wait(60)
        except BaseException as error:  # surfaced below
            failed.append(error)
            locked.set()
        finally:
            connection.close()

    def actor() -> None:
        try:
            acted.append(act())
        except BaseException as error:  # returned
            acted.append(error)
        finally:
            connection.close()

    holding, acting = threading.Thread(target=holder), threading.Thread(target=actor)
    holding.start()
    assert locked.wait(60) and not failed, failed
    acting.start()
    for _ in range(600):  # until ``act`` waits on the lock (or has ended)
        if not acting.is_alive() or waiting_on_a_lock():
            break
        time.sleep(0.05)
    seen = while_waiting()
    release.set()
    holding.join(60)
    acting.join(60)
    assert not failed and len(acted) == 1, (failed, acted)
    return acted[0], seen


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0
