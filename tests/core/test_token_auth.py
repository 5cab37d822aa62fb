"""Token authentication read in one statement answers exactly as DRF's own check does."""

import pytest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient, APIRequestFactory

from core.token_auth import OneStatementTokenAuthentication

pytestmark = pytest.mark.django_db


def authenticate(key: str):
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {key}")
    return OneStatementTokenAuthentication().authenticate(request)


def test_the_user_read_with_the_token_equals_the_orm_one(django_user_model):
    user = django_user_model.objects.create_user("ann", email="ann@example.org", first_name="Ann", is_staff=True)
    user.last_login = timezone.now()
    user.save()
    token = Token.objects.create(user=user)
    found, auth = authenticate(token.key)
    stored = django_user_model.objects.get(pk=user.pk)
    for field in django_user_model._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(stored, field.attname), field.name
    assert timezone.is_aware(found.last_login) and timezone.is_aware(found.date_joined)
    assert auth.key == token.key and auth.user == found
    assert found._state.adding is False  # a stored row: saving it updates, never inserts


def test_an_unknown_token_and_an_inactive_user_are_refused_as_drf_words_it(django_user_model):
    with pytest.raises(exceptions.AuthenticationFailed, match="Invalid token."):
        authenticate("0" * 40)
    user = django_user_model.objects.create_user("gone", is_active=False)
    with pytest.raises(exceptions.AuthenticationFailed, match="User inactive or deleted."):
        authenticate(Token.objects.create(user=user).key)


def test_the_api_refuses_a_wrong_token_and_serves_a_right_one(django_user_model):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    response = client.get("/api/projects/")
    # 403, not 401: session auth comes first in the API's list and asks for no WWW-Authenticate.
    assert response.status_code == 403 and response.json()["detail"] == "Invalid token."
    user = django_user_model.objects.create_user("bob")
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/projects/").status_code == 200
