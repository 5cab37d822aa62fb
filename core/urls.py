"""Routes of core (included under api/ by config/urls.py): the token endpoint."""

from django.urls import path

from .token_api import obtain_auth_token

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
]
