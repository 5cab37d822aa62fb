"""The OpenAPI schema documents every operation's answers: its success code and the common errors
that core.api_schema works out from the view's classes (tests/api/test_schemathesis.py checks them)."""

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def paths():
    return SchemaGenerator().get_schema(request=None, public=True)["paths"]


def codes(paths, method: str, path: str) -> set[str]:
    return set(paths[path][method]["responses"])


def test_job_starting_operations_answer_202(paths):
    for path in ("/api/projects/{id}/exports/", "/api/projects/{id}/jury-jobs/", "/api/evaluation-runs/"):
        assert "202" in codes(paths, "post", path), path
    assert "202" in codes(paths, "post", "/api/exports/{export_id}/train/")


def test_every_operation_documents_the_common_errors(paths):
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"403", "429", "503"} <= set(responses), (method, path)
            assert "Retry-After" in responses["503"]["headers"]
            if "{" in path:
                assert "404" in responses, (method, path)
            if method in ("post", "put"):
                assert responses["400"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/BadRequest"
                }


def test_token_first_views_challenge_with_401_and_conflicts_are_409(paths):
    assert {"401", "409"} <= codes(paths, "post", "/api/moderation/{slug}/")
    assert "409" in codes(paths, "post", "/api/moderation/decisions/{decision_id}/feedback/")
    assert "401" not in codes(paths, "get", "/api/projects/")  # session first: DRF answers 403
    assert codes(paths, "get", "/api/taxonomies/{id}/") == {"200", "403", "404", "429", "503"}


def test_503_says_what_needs_redis(paths):
    """Throttled operations need Redis for every request; the others only to count a password's failures."""
    moderation = paths["/api/moderation/{slug}/"]["post"]["responses"]["503"]["description"]
    assert "rate limit" in moderation and "nothing was decided" in moderation
    export = paths["/api/projects/{id}/exports/"]["post"]["responses"]["503"]["description"]
    assert "Basic auth" in export and "nor does starting a job" in export
