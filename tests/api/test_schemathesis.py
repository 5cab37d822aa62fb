"""Schemathesis against the live test server with a staff token: no 5xx, responses match the schema.

Bounded: a few examples per operation (AEGIS_FUZZ_EXAMPLES, default 3), one pass only (``once``).
Operations that start model work (training, evaluation, jury and generation jobs) are fuzzed too;
their random ids and bodies are refused before anything runs.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

pytestmark = [pytest.mark.once, pytest.mark.django_db(transaction=True)]
EXAMPLES = int(os.environ.get("AEGIS_FUZZ_EXAMPLES", 3))


@pytest.fixture
def staff_token(django_user_model):
    staff = django_user_model.objects.create_user("fuzz-admin", is_staff=True, is_superuser=True)
    return Token.objects.create(user=staff).key


def _summary(error: BaseException) -> str:
    """The first line of each failed check, e.g. 'Response violates schema: ... (status 200)'."""
    parts = error.exceptions if isinstance(error, BaseExceptionGroup) else [error]
    return "; ".join(" ".join(str(part).split())[:400] for part in parts)


def test_api_answers_without_5xx_and_as_documented(live_server, staff_token):
    headers = {"Authorization": f"Token {staff_token}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json", headers=headers)
    failures: dict[str, str] = {}
    requests = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def call(case):
            nonlocal requests
            requests += 1
            case.call_and_validate(
                base_url=live_server.url,
                headers=headers,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        try:
            call()
        except (Exception, BaseExceptionGroup) as error:  # a failed check, reported per operation below
            failures[operation.label] = _summary(error)
    print(f"schemathesis: {requests} requests, {len(failures)} failing operations")
    for label, summary in failures.items():
        print(f"FAIL {label}: {summary[:300]}")
    assert failures == {}
