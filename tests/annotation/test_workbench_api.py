"""Workbench API: roles, blind labelling, object-level checks, token auth, the OpenAPI schema."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Annotation
from annotation.selectors import taxonomy_choices
from annotation.services import add_member, import_samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(project, django_user_model, shared_data):
    boss = django_user_model.objects.create_user("boss", password="pw-boss-123")
    add_member(project, by=django_user_model.objects.create_user("root", is_staff=True), username="boss", role="admin")
    people = {}
    for name in ("alice", "bob"):
        people[name] = django_user_model.objects.create_user(name, password=f"pw-{name}-123")
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    clients = {}
    for name, user in [("boss", boss), *people.items()]:
        client = APIClient()
        client.force_authenticate(user)
        clients[name] = client
    return project, clients


def test_admin_sets_up_members_and_batches(setup):
    project, c = setup
    for name in ("alice", "bob"):
        response = c["boss"].post(f"/api/projects/{project.pk}/members/", {"username": name, "role": "annotator"})
        assert response.status_code == 201, response.content
    response = c["boss"].post(
        f"/api/projects/{project.pk}/members/",
        {"username": "alice", "role": "annotator", "opted_out_categories": ["S7"], "daily_cap": 200},
        format="json",
    )
    assert {
        "username": "alice",
        "role": "annotator",
        "opted_out_categories": ["S7"],
        "daily_cap": 200,
        "break_reminder_minutes": None,
    } in response.json()
    response = c["boss"].post(f"/api/projects/{project.pk}/batches/", {"name": "b1", "limit": 4}, format="json")
    assert response.status_code == 201 and response.json()["items"] == 4
    bad = c["boss"].post(
        f"/api/projects/{project.pk}/members/",
        {"username": "alice", "role": "annotator", "opted_out_categories": ["Z9"]},
        format="json",
    )
    assert bad.status_code == 400 and "opted_out_categories" in bad.json()


@pytest.fixture
def working(setup):
    project, c = setup
    for name in ("alice", "bob"):
        c["boss"].post(f"/api/projects/{project.pk}/members/", {"username": name, "role": "annotator"})
    c["boss"].post(f"/api/projects/{project.pk}/batches/", {"name": "b1", "limit": 4}, format="json")
    return project, c


def test_annotators_are_blind_to_each_other(working):
    project, c = working
    a = c["alice"].post(f"/api/projects/{project.pk}/next/").json()
    b = c["bob"].post(f"/api/projects/{project.pk}/next/").json()
    assert a["sample"]["id"] == b["sample"]["id"]
    submitted = c["alice"].post(
        f"/api/assignments/{a['assignment']['id']}/submit/", {"prompt_label": "safe", "categories": []}, format="json"
    )
    assert submitted.status_code == 200 and submitted.json()["annotation"]["prompt_label"] == "safe"
    assert c["bob"].get(f"/api/assignments/{b['assignment']['id']}/").json()["annotation"] is None
    for path in ("", "history/"):
        assert c["bob"].get(f"/api/assignments/{a['assignment']['id']}/{path}").status_code == 403
    for action, body in (
        ("submit", {"prompt_label": "unsafe", "categories": ["S1"]}),
        ("skip", {"reason": "x"}),
        ("flag", {"reason": "x"}),
    ):
        assert (
            c["bob"].post(f"/api/assignments/{a['assignment']['id']}/{action}/", body, format="json").status_code == 403
        )
    history = c["alice"].get(f"/api/assignments/{a['assignment']['id']}/history/").json()
    assert [h["new"]["prompt_label"] for h in history] == ["safe"]
    assert "prompt_label" not in str(c["bob"].get(f"/api/projects/{project.pk}/").json())


def test_annotators_cannot_administer(working):
    project, c = working
    pk = project.pk
    assert c["alice"].post(f"/api/projects/{pk}/members/", {"username": "bob", "role": "admin"}).status_code == 403
    assert c["alice"].post(f"/api/projects/{pk}/batches/", {"name": "x"}, format="json").status_code == 403
    assert c["alice"].get(f"/api/projects/{pk}/dashboard/").status_code == 403
    assert c["alice"].get(f"/api/projects/{pk}/samples/").status_code == 403
    assert c["alice"].post(f"/api/projects/{pk}/exports/", {}, format="json").status_code == 403
    assert c["boss"].get(f"/api/projects/{pk}/dashboard/").json()["queue_depth"] == 4


def test_validation_errors_name_the_field(working):
    project, c = working
    a = c["alice"].post(f"/api/projects/{project.pk}/next/").json()
    response = c["alice"].post(
        f"/api/assignments/{a['assignment']['id']}/submit/", {"prompt_label": "unsafe", "categories": []}, format="json"
    )
    assert response.status_code == 400 and "categories" in response.json()


def test_empty_queue_says_so(working):
    project, c = working
    for _ in range(4):
        a = c["alice"].post(f"/api/projects/{project.pk}/next/").json()
        c["alice"].post(f"/api/assignments/{a['assignment']['id']}/submit/", {"prompt_label": "safe"}, format="json")
    answer = c["alice"].post(f"/api/projects/{project.pk}/next/").json()
    assert answer["no_work"] == "no items left in your queue"
    assert answer["progress"] == {
        "submitted": 4,
        "submitted_today": 4,
        "remaining": 0,
        "remaining_more": False,
        "daily_cap": None,
    }


def test_submit_then_next_answers_the_next_item_until_the_queue_is_empty(working):
    """``?then=next``: one request per labelled item; what ``next`` would have answered, under ``next``."""
    project, c = working
    view = c["alice"].post(f"/api/projects/{project.pk}/next/").json()
    seen = []
    while "assignment" in view:
        seen.append(view["sample"]["id"])
        response = c["alice"].post(
            f"/api/assignments/{view['assignment']['id']}/submit/?then=next", {"prompt_label": "safe"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["annotation"]["prompt_label"] == "safe"
        view = response.json()["next"]
        if "assignment" in view:  # the lease it holds, as /next/ answers it less the project's categories
            again = c["alice"].post(f"/api/projects/{project.pk}/next/").json()
            assert again.pop("categories") == taxonomy_choices(project) and view == again
    assert len(seen) == len(set(seen)) == 4
    assert view["no_work"] == "no items left in your queue" and view["progress"]["submitted"] == 4
    assert Annotation.objects.filter(annotator__username="alice").count() == 4


def test_submit_then_anything_else_is_refused_before_anything_is_stored(working):
    project, c = working
    view = c["alice"].post(f"/api/projects/{project.pk}/next/").json()
    response = c["alice"].post(
        f"/api/assignments/{view['assignment']['id']}/submit/?then=<script>", {"prompt_label": "safe"}, format="json"
    )
    assert response.status_code == 400 and response.json() == {"then": "'next' or nothing, not '<script>'"}
    assert not Annotation.objects.exists()


def test_token_auth_for_scripts(working, django_user_model):
    project, _ = working
    token = Token.objects.create(user=django_user_model.objects.get(username="alice"))
    client = APIClient()
    assert client.post(f"/api/projects/{project.pk}/next/").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert "assignment" in client.post(f"/api/projects/{project.pk}/next/").json()
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "pw-alice-123"})
    assert response.json()["token"] == token.key


def test_openapi_schema_is_served(working):
    _, c = working
    schema = c["alice"].get("/api/schema/")
    assert schema.status_code == 200
    body = schema.content.decode()
    assert "/api/projects/{id}/next/" in body and "/api/assignments/{assignment_id}/submit/" in body
    assert c["alice"].get("/api/docs/").status_code == 200
