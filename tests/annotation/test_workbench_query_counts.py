"""The labelling loop's cost in SQL statements, so that it cannot creep back (issue 18).

`next` runs at most four SQL statements, the token check included, plus the BEGIN and COMMIT of
the transaction (which Django logs too). `submit` runs three on PostgreSQL: the token, the
assignment, and one statement that writes the label, its audit entry, its categories and the
count on the item (writing WITHs); SQLite has no writes inside WITH, so it runs each write apart.
Only the submission that completes an item (one in k) also decides the final label.
"""

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.selectors import taxonomy_choices
from annotation.services import add_member, create_assignment_batch, import_samples

pytestmark = pytest.mark.django_db

NEXT_STATEMENTS = 4
SUBMIT_STATEMENTS = {"postgresql": 3, "sqlite": 7}
FINALISING = 2  # whether it is final already with its annotations; the final label (one upsert)
TRANSACTION = 2  # BEGIN, COMMIT


def most(statements: int = 0, *, submit: bool = False) -> int:
    return statements + TRANSACTION + (SUBMIT_STATEMENTS[connection.vendor] if submit else 0)


@pytest.fixture
def clients(project, django_user_model, shared_data):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    create_assignment_batch(project, by=boss, name="b", limit=6)
    taxonomy_choices(project)  # read once per process (a project's taxonomy is frozen), as a server has
    clients = []
    for i, opted_out in enumerate([[], [], ["S7"]]):
        user = django_user_model.objects.create_user(f"annotator{i}")
        add_member(project, by=boss, username=user.username, role="annotator", opted_out_categories=opted_out)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        clients.append(client)
    return clients


def pull(client, project, django_assert_max_num_queries) -> dict:
    with django_assert_max_num_queries(most(NEXT_STATEMENTS)):
        response = client.post(f"/api/projects/{project.pk}/next/")
    assert response.status_code == 200 and "assignment" in response.json(), response.content
    return response.json()


def submit(client, view, label, limit, django_assert_max_num_queries) -> None:
    with django_assert_max_num_queries(limit):
        response = client.post(f"/api/assignments/{view['assignment']['id']}/submit/", label, format="json")
    assert response.status_code == 200, response.content


UNSAFE = {"prompt_label": "unsafe", "categories": ["S1", "S7"]}


def test_next_and_submit_stay_within_a_few_statements(project, clients, django_assert_max_num_queries):
    first, second, opted_out = clients
    view = pull(first, project, django_assert_max_num_queries)  # a new lease
    assert pull(first, project, django_assert_max_num_queries)["assignment"] == view["assignment"]  # the same
    submit(first, view, UNSAFE, most(submit=True), django_assert_max_num_queries)
    revised = {**UNSAFE, "categories": ["S1"], "comment": "second thoughts"}
    submit(first, view, revised, most(submit=True), django_assert_max_num_queries)
    other = pull(second, project, django_assert_max_num_queries)
    assert other["sample"]["id"] == view["sample"]["id"]
    submit(second, other, {"prompt_label": "safe"}, most(submit=True), django_assert_max_num_queries)
    # The third annotator opted out of S7, which the first one saw in this sample: another item.
    avoided = pull(opted_out, project, django_assert_max_num_queries)
    assert avoided["sample"]["id"] != view["sample"]["id"]
    third = pull(first, project, django_assert_max_num_queries)
    submit(first, third, {"prompt_label": "safe"}, most(submit=True), django_assert_max_num_queries)


def test_the_submission_that_completes_an_item_decides_its_label_in_a_few_more(
    project, clients, django_assert_max_num_queries
):
    views = [pull(client, project, django_assert_max_num_queries) for client in clients[:2]]
    for client, view in zip(clients[:2], views, strict=True):
        submit(client, view, {"prompt_label": "safe"}, most(submit=True), django_assert_max_num_queries)
    last = pull(clients[2], project, django_assert_max_num_queries)
    assert last["sample"]["id"] == views[0]["sample"]["id"]
    submit(clients[2], last, {"prompt_label": "safe"}, most(FINALISING, submit=True), django_assert_max_num_queries)
    final = clients[0].get(f"/api/assignments/{views[0]['assignment']['id']}/").json()
    assert final["final"] is True
