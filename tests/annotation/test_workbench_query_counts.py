"""The labelling loop's cost in SQL statements, so that it cannot creep back (issue 18).

`next` runs at most four SQL statements, the token check included, plus the BEGIN and COMMIT of
the transaction (which Django logs too). `submit` runs three on PostgreSQL: the token, the
assignment, and one statement that writes the label, its audit entry, its categories, the
count on the item and the annotator's tally (writing WITHs); SQLite has no writes inside WITH, so
it runs each write apart.
Only the submission that completes an item (one in k) also decides the final label (where
k = 1, on PostgreSQL, within its writing statement).
"""

from contextlib import contextmanager

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation import selectors
from annotation.selectors import taxonomy_choices
from annotation.services import add_member, create_assignment_batch, import_samples

pytestmark = pytest.mark.django_db

NEXT_STATEMENTS = 4
SUBMIT_STATEMENTS = {"postgresql": 3, "sqlite": 8}
# The final label (one upsert): on PostgreSQL the submission's statement read the votes too (and
# where k = 1 wrote the final label itself: hot_path.SINGLE_VOTE_FINAL); SQLite reads them, and
# whether the sample is final already, apart. After the commit, whether the
# project has a moderation ensemble to learn from it (the hook runs in the request; looked up once
# per 2 s per process, so only the first final label of a test pays it).
FINALISING = {"postgresql": 2, "sqlite": 3}
TRANSACTION = 2  # BEGIN, COMMIT


def most(statements: int = 0, *, submit: bool = False) -> int:
    return statements + TRANSACTION + (SUBMIT_STATEMENTS[connection.vendor] if submit else 0)


@pytest.fixture
def clients(project, django_user_model, shared_data, monkeypatch):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    create_assignment_batch(project, by=boss, name="b", limit=6)
    taxonomy_choices(project)  # read once per process (a project's taxonomy is frozen), as a server has
    # The project's open items are counted once a second per process (selectors.open_items_plenty),
    # as a server has just done; the clock stands still, so that they are not counted again.
    monkeypatch.setattr(selectors, "open_items_clock", lambda: 1000.0)
    selectors.open_items_plenty(project.pk)
    clients = []
    for i, opted_out in enumerate([[], [], ["S7"]]):
        user = django_user_model.objects.create_user(f"annotator{i}")
        add_member(project, by=boss, username=user.username, role="annotator", opted_out_categories=opted_out)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        clients.append(client)
    return clients


@pytest.fixture
def within(django_assert_max_num_queries, django_capture_on_commit_callbacks):
    """``with within(n):`` at most n statements, the hooks the request runs after its commit included."""

    @contextmanager
    def at_most(statements: int):
        with django_assert_max_num_queries(statements), django_capture_on_commit_callbacks(execute=True):
            yield

    return at_most


def pull(client, project, within) -> dict:
    with within(most(NEXT_STATEMENTS)):
        response = client.post(f"/api/projects/{project.pk}/next/")
    assert response.status_code == 200 and "assignment" in response.json(), response.content
    return response.json()


def submit(client, view, label, limit, within) -> None:
    with within(limit):
        response = client.post(f"/api/assignments/{view['assignment']['id']}/submit/", label, format="json")
    assert response.status_code == 200, response.content


UNSAFE = {"prompt_label": "unsafe", "categories": ["S1", "S7"]}


def test_next_and_submit_stay_within_a_few_statements(project, clients, within):
    first, second, opted_out = clients
    view = pull(first, project, within)  # a new lease
    assert pull(first, project, within)["assignment"] == view["assignment"]  # the same
    submit(first, view, UNSAFE, most(submit=True), within)
    revised = {**UNSAFE, "categories": ["S1"], "comment": "second thoughts"}
    submit(first, view, revised, most(submit=True), within)
    other = pull(second, project, within)
    assert other["sample"]["id"] == view["sample"]["id"]
    submit(second, other, {"prompt_label": "safe"}, most(submit=True), within)
    # The third annotator opted out of S7, which the first one saw in this sample: another item.
    avoided = pull(opted_out, project, within)
    assert avoided["sample"]["id"] != view["sample"]["id"]
    third = pull(first, project, within)
    submit(first, third, {"prompt_label": "safe"}, most(submit=True), within)


def test_the_submission_that_completes_an_item_decides_its_label_in_a_few_more(project, clients, within):
    views = [pull(client, project, within) for client in clients[:2]]
    for client, view in zip(clients[:2], views, strict=True):
        submit(client, view, {"prompt_label": "safe"}, most(submit=True), within)
    last = pull(clients[2], project, within)
    assert last["sample"]["id"] == views[0]["sample"]["id"]
    submit(clients[2], last, {"prompt_label": "safe"}, most(FINALISING[connection.vendor], submit=True), within)
    final = clients[0].get(f"/api/assignments/{views[0]['assignment']['id']}/").json()
    assert final["final"] is True
    views = [pull(client, project, within) for client in clients]
    assert len({view["sample"]["id"] for view in views}) == 1
    for client, view in zip(clients[:2], views[:2], strict=True):
        submit(client, view, {"prompt_label": "safe"}, most(submit=True), within)
    completing = FINALISING[connection.vendor] - 1  # the ensemble lookup made above still holds
    submit(clients[2], views[2], {"prompt_label": "safe"}, most(completing, submit=True), within)


def test_where_k_is_one_the_submission_decides_the_final_label_in_its_own_statements(project, clients, within):
    project.batches.update(annotations_per_sample=1)
    single_vote = {"postgresql": 0, "sqlite": FINALISING["sqlite"]}[connection.vendor]
    for client in clients[:2]:
        view = pull(client, project, within)
        ensemble_lookup = 1 if client is clients[0] else 0  # then kept for 2 s
        submit(client, view, UNSAFE, most(single_vote + ensemble_lookup, submit=True), within)
        final = client.get(f"/api/assignments/{view['assignment']['id']}/").json()
        assert final["final"] is True


def test_submit_then_next_costs_a_submit_and_a_pull_in_one_transaction(project, clients, within):
    first = clients[0]
    view = pull(first, project, within)
    for _ in range(2):
        with within(most(submit=True) + NEXT_STATEMENTS - 1):  # one transaction, one token check
            path = f"/api/assignments/{view['assignment']['id']}/submit/?then=next"
            response = first.post(path, {"prompt_label": "safe"}, format="json")
        assert response.status_code == 200, response.content
        following = response.json()["next"]
        assert following["sample"]["id"] != view["sample"]["id"]
        view = following


@pytest.mark.parametrize("path", ["/api/projects/1/next/", "/api/assignments/1/submit/"])
def test_the_loops_routes_are_matched_before_the_other_apis(path):
    """Each pattern Django tries before the match costs every request of the loop; the loop's two
    routes come first (config/urls.py, annotation/urls.py)."""
    assert len(resolve(path).tried) <= 4


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_postgresql_plans_the_loops_statements_once_per_connection(project, clients, within):
    """Planning a statement cost PostgreSQL several times its execution; psycopg prepares a statement
    run five times on a connection (config/settings.py), and the server reuses its plan."""
    for _ in range(3):
        for client in clients[:2]:
            view = pull(client, project, within)
            submit(client, view, {"prompt_label": "safe"}, most(FINALISING[connection.vendor], submit=True), within)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%FROM annotation_queueitem q%JOIN annotation_sample s%"],
        )
        plans = cursor.fetchall()
    assert plans and plans[0][0] >= 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="asynchronous commits: PostgreSQL")
def test_a_label_is_committed_durably_even_with_the_next_items_lease(project, clients):
    """A lease alone is committed without awaiting the WAL flush (hot_path.LEASE_COMMIT_NOT_AWAITED);
    submit?then=next writes the label and the next lease in one transaction, awaited in full."""
    first = clients[0]

    def transactions(path: str, body=None) -> list[list[str]]:
        with CaptureQueriesContext(connection) as captured:
            assert first.post(path, body, format="json").status_code == 200
        found: list[list[str]] = []
        for query in captured.captured_queries:
            if query["sql"] == "BEGIN" or query["sql"].startswith("SAVEPOINT"):  # a savepoint in a test's transaction
                found.append([])
            elif found:
                found[-1].append(query["sql"])
        return found

    (pull_alone,) = transactions(f"/api/projects/{project.pk}/next/")
    assert any("synchronous_commit" in statement for statement in pull_alone)
    view = first.post(f"/api/projects/{project.pk}/next/").json()
    path = f"/api/assignments/{view['assignment']['id']}/submit/?then=next"
    (submit_and_pull,) = transactions(path, {"prompt_label": "safe"})
    assert any("INSERT INTO annotation_annotation" in statement for statement in submit_and_pull)
    assert any("INSERT INTO annotation_assignment" in statement for statement in submit_and_pull)
    assert not any("synchronous_commit" in statement for statement in submit_and_pull)
