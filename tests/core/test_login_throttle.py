"""Password guessing: the login form, the token endpoint and Basic auth lock out after the limit with 429."""

import base64
import uuid

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
PASSWORD = "right-pw-123"


@pytest.fixture
def account(django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = 3
    return django_user_model.objects.create_user(f"u-{uuid.uuid4().hex[:10]}", password=PASSWORD)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_login_form_locks_out_and_says_so(client, account):
    for _ in range(2):
        response = client.post("/accounts/login/", {"username": account.username, "password": "wrong"})
        assert response.status_code == 200
    assert client.post("/accounts/login/", {"username": account.username, "password": "wrong"}).status_code == 429
    response = client.post("/accounts/login/", {"username": account.username, "password": PASSWORD})
    assert response.status_code == 429
    assert b"locked" in response.content.lower()
    assert "_auth_user_id" not in client.session


def test_token_endpoint_locks_out_with_429(account):
    api = APIClient()
    for _ in range(2):
        assert api.post("/api/auth/token/", {"username": account.username, "password": "x"}).status_code == 400
    assert api.post("/api/auth/token/", {"username": account.username, "password": "x"}).status_code == 429
    response = api.post("/api/auth/token/", {"username": account.username, "password": PASSWORD})
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many failed logins")


def test_basic_auth_locks_out_with_429(account):
    api = APIClient()
    for _ in range(2):
        assert api.get("/api/projects/", HTTP_AUTHORIZATION=basic(account.username, "x")).status_code in (401, 403)
    assert api.get("/api/projects/", HTTP_AUTHORIZATION=basic(account.username, "x")).status_code == 429
    response = api.get("/api/projects/", HTTP_AUTHORIZATION=basic(account.username, PASSWORD))
    assert response.status_code == 429
    assert "Too many failed logins" in response.json()["detail"]


def test_a_form_login_resets_the_count_and_other_accounts_are_untouched(client, account, django_user_model):
    for _ in range(2):
        for _ in range(2):
            client.post("/accounts/login/", {"username": account.username, "password": "x"})
        assert client.post("/accounts/login/", {"username": account.username, "password": PASSWORD}).status_code == 302
        client.logout()
    other = django_user_model.objects.create_user(f"o-{uuid.uuid4().hex[:10]}", password=PASSWORD)
    api = APIClient()
    for _ in range(4):
        api.post("/api/auth/token/", {"username": account.username, "password": "x"})
    assert api.post("/api/auth/token/", {"username": other.username, "password": PASSWORD}).status_code == 200


def test_a_right_password_on_the_token_endpoint_or_basic_auth_resets_the_count(account):
    api = APIClient()
    for _ in range(3):  # 2 failures, a success, 2 failures, a success, ...: never 3 in a row, never locked
        for _ in range(2):
            assert api.post("/api/auth/token/", {"username": account.username, "password": "x"}).status_code == 400
        assert api.post("/api/auth/token/", {"username": account.username, "password": PASSWORD}).status_code == 200
    for _ in range(3):
        for _ in range(2):
            response = api.get("/api/projects/", HTTP_AUTHORIZATION=basic(account.username, "x"))
            assert response.status_code in (401, 403)
        assert api.get("/api/projects/", HTTP_AUTHORIZATION=basic(account.username, PASSWORD)).status_code == 200
