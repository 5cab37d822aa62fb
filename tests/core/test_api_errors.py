"""The one exception handler: application errors answer their status and body, whichever view raised them."""

import pytest
from django.db import DataError, connection, transaction
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from annotation.browse import BrowseError
from annotation.labels import LabelError
from core.errors import ApplicationError
from evaluation.services import EvaluationError
from jury.services import JuryError
from moderation.services import ModerationError, StateConflict
from taxonomy.services import TaxonomyError


def answer(error: Exception):
    class Raising(APIView):
        authentication_classes: list = []
        permission_classes: list = []

        def get(self, request):
            raise error

    return Raising.as_view()(APIRequestFactory().get("/"))


@pytest.mark.parametrize("kind", [ApplicationError, JuryError, EvaluationError, ModerationError, TaxonomyError])
def test_an_application_error_is_a_400_with_its_message_as_detail(kind):
    response = answer(kind("no such thing"))
    assert response.status_code == 400
    assert response.data == {"detail": "no such thing"}


def test_a_conflict_is_a_409():
    response = answer(StateConflict("the ensemble is paused"))
    assert (response.status_code, response.data) == (409, {"detail": "the ensemble is paused"})


def test_errors_that_name_a_field_answer_with_the_field():
    assert answer(LabelError("prompt_label", "required")).data == {"prompt_label": ["required"]}
    assert answer(BrowseError("cursor", "not a cursor")).data == {"cursor": "not a cursor"}


def test_other_errors_are_not_turned_into_400():
    with pytest.raises(KeyError):
        answer(KeyError("a bug"))


@pytest.mark.django_db
def test_a_number_too_large_for_the_database_is_a_400():
    """SQLite raises OverflowError, PostgreSQL a DataError (SQLSTATE 22003): both are the request's fault."""
    cast = "::integer" if connection.vendor == "postgresql" else ""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT %s{cast}", [2**70])
    except (OverflowError, DataError) as error:
        refused = error
    response = answer(refused)
    assert (response.status_code, response.data) == (400, {"detail": "a number in the request is out of range"})


def test_an_overflow_of_our_own_is_not_blamed_on_the_request():
    with pytest.raises(OverflowError):
        answer(OverflowError("math range error"))
