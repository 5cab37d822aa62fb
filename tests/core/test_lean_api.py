"""The labelling loop's lean path (core.lean_api) answers exactly as DRF does, errors included.

Every request is sent twice: as the loop sends it (token, JSON: the lean path) and with
``?format=json``, which DRF honours and the lean path leaves to DRF. Status, body and the
authentication challenge must be the same; DRF's ``Allow`` header shows which path answered a
success (errors are DRF's on both).
"""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.services import add_member, create_assignment_batch, import_samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(project, django_user_model, shared_data):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    create_assignment_batch(project, by=boss, name="b", limit=4)
    tokens = {}
    for name in ("ann", "other"):
        user = django_user_model.objects.create_user(name)
        add_member(project, by=boss, username=name, role="annotator")
        tokens[name] = Token.objects.create(user=user).key
    outsider = django_user_model.objects.create_user("outsider")
    tokens["outsider"] = Token.objects.create(user=outsider).key
    gone = django_user_model.objects.create_user("gone", is_active=False)
    tokens["inactive"] = Token.objects.create(user=gone).key
    tokens["unknown"] = "0" * 40
    return project, tokens


def both_paths(token: str, path: str, body=None, content_type="application/json"):
    """(lean answer, DRF answer) of one request."""
    answers = []
    for suffix in ("", "?format=json"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        if body is None:
            answers.append(client.post(path + suffix))
        else:
            answers.append(client.generic("POST", path + suffix, body, content_type=content_type))
    lean, drf = answers
    assert "Allow" in drf
    return lean, drf


def same(lean, drf) -> int:
    assert lean.status_code == drf.status_code
    assert lean.json() == drf.json()
    assert lean.get("WWW-Authenticate") == drf.get("WWW-Authenticate")
    return lean.status_code


def test_a_pull_and_a_submission_answer_as_through_drf(setup):
    project, tokens = setup
    lean, drf = both_paths(tokens["ann"], f"/api/projects/{project.pk}/next/")
    assert "Allow" not in lean  # the lean path answered it (DRF adds Allow; it answers errors on both)
    assert same(lean, drf) == 200 and lean.json()["assignment"]["id"]  # the same lease, pulled twice
    assignment = lean.json()["assignment"]["id"]
    label = b'{"prompt_label": "unsafe", "categories": ["S1"], "comment": "<script>alert(1)</script>"}'
    lean, drf = both_paths(tokens["ann"], f"/api/assignments/{assignment}/submit/", label)
    assert "Allow" not in lean and same(lean, drf) == 200  # the second is a revision with the same values
    assert lean.json()["annotation"]["comment"] == "<script>alert(1)</script>"
    assert lean["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "who, body, expected",
    [
        ("unknown", None, 403),  # DRF answers 403 when its first authenticator (session) has no challenge
        ("inactive", None, 403),
        ("outsider", None, 403),
        ("ann", b'{"prompt_label": ', 400),
        ("ann", b'{"prompt_label": "dangerous"}', 400),
        ("ann", b'{"prompt_label": "safe", "time_spent_ms": -1}', 400),
        ("ann", b'["not", "an", "object"]', 400),
        ("ann", b'{"prompt_label": "safe", "time_spent_ms": NaN}', 400),  # strict JSON, as DRF parses it
        ("other", b'{"prompt_label": "safe"}', 403),
    ],
)
def test_errors_answer_as_through_drf(setup, who, body, expected):
    project, tokens = setup
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {tokens['ann']}")
    assignment = client.post(f"/api/projects/{project.pk}/next/").json()["assignment"]["id"]
    path = f"/api/projects/{project.pk}/next/" if body is None else f"/api/assignments/{assignment}/submit/"
    lean, drf = both_paths(tokens[who], path, body)
    assert same(lean, drf) == expected, lean.json()


def test_unknown_project_and_assignment_answer_404_on_both_paths(setup):
    _, tokens = setup
    for path, body in (
        ("/api/projects/999999/next/", None),
        ("/api/assignments/999999/submit/", b'{"prompt_label": "safe"}'),
    ):
        lean, drf = both_paths(tokens["ann"], path, body)
        assert same(lean, drf) in (403, 404)


def test_other_requests_go_through_drf(setup, client, django_user_model):
    """A browser's session, a form body or an HTML Accept header are DRF's, as before."""
    project, tokens = setup
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {tokens['ann']}")
    form = api.post(f"/api/projects/{project.pk}/next/", {"x": "1"})  # multipart
    assert form.status_code == 200 and "Allow" in form
    html = api.post(f"/api/projects/{project.pk}/next/", HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and "Allow" in html and html["Content-Type"].startswith("text/html")
    client.force_login(django_user_model.objects.get(username="ann"))
    session = client.post(f"/api/projects/{project.pk}/next/")
    assert session.status_code == 200 and "Allow" in session
