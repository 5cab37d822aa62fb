"""Schemathesis against the WSGI app in process with a staff token and some data: no 5xx, and every
answer's status code, body and content type as the OpenAPI schema documents them.

Bounded: each operation is called with AEGIS_FUZZ_EXAMPLES generated cases (default 3) twice, once
with the ids the schema's types give and once with the ids of real objects (a project with samples,
an export, an import, jobs and runs of each kind, an ensemble with a decision), so the answers past
the 404 (200, 201, 202, 400, 409) are checked too (every GET but one answers 200 at least once). The
test runs inside the test's transaction, in both database passes:
jobs that a call starts are never dispatched (their dispatch waits for a commit), so nothing runs.
Every operation of the schema is exercised; none is left out.
"""

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from annotation.models import ImportBatch, Sample
from annotation.services import add_member, create_assignment_batch, export_dataset, import_samples, pull_next_item
from config.wsgi import application
from evaluation.services import queue_evaluation_run
from jury.generation import start_generation_job
from jury.models import Juror
from jury.services import start_jury_job
from moderation.models import Decision
from moderation.services import content_hash, create_ensemble
from training.models import GuardModel
from training.services import queue_training_from_export

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("AEGIS_FUZZ_EXAMPLES", 3))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]

ROWS = [
    {"id": "f1", "prompt": "How do I hurt someone?", "response": "Here is how.", "prompt_label": "unsafe",
     "response_label": "unsafe", "violated_categories": "Violence", "prompt_label_source": "human"},
    {"id": "f2", "prompt": "Tell me a joke.", "response": "Why did the chicken cross the road?",
     "prompt_label": "safe", "response_label": "safe", "violated_categories": "", "prompt_label_source": "human"},
    {"id": "f3", "prompt": "What is the capital of France?", "response": None, "prompt_label": "safe",
     "response_label": None, "violated_categories": "", "prompt_label_source": "human"},
]  # fmt: skip
UNLABELLED = [{"id": "u1", "prompt": "Hello there.", "response": "Hi!"}, {"id": "u2", "prompt": "How are you?"}]


@pytest.fixture
def in_process_requests():
    """Requests served inside the test's transaction, as Django's test client serves them: Django
    closes the connection around each request (CONN_MAX_AGE), which would end that transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("fuzz-admin", is_staff=True, is_superuser=True)


@pytest.fixture
def real_ids(staff, project, tmp_path) -> dict[str, dict[str, object]]:
    """An object of each kind the API addresses, created through the services; their ids by path prefix."""
    for name, rows, adapter in (("labelled", ROWS, "aegis2"), ("unlabelled", UNLABELLED, "generic")):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        import_samples(project, path, adapter=adapter)
    add_member(project, by=staff, username=staff.username, role="annotator")
    create_assignment_batch(project, by=staff, name="fuzz")
    assignment = pull_next_item(staff, project.pk).assignment
    export = export_dataset(project, formats=["jsonl", "csv"], split_ratios={"train": 1.0})
    guard = GuardModel.objects.create(name="fuzz-guard", kind="minilm", base_model="minilm", path="/nonexistent")
    juror = Juror.objects.create(project=project, name="fuzz-juror", model="m", base_url="http://127.0.0.1:9/v1")
    jury_job = start_jury_job(project, by=staff)
    generation_job = start_generation_job(
        project, by=staff, kind="refusal", model="m", base_url="http://127.0.0.1:9/v1"
    )
    training_run = queue_training_from_export(export, by=staff, kind="minilm")
    evaluation_run = queue_evaluation_run(
        by=staff, guards=[{"guard": guard.pk}], benchmarks=[{"name": "simple_safety_tests"}]
    )
    ensemble = create_ensemble(name="Fuzz", slug="fuzz", experts=[{"juror": juror.pk}], by=staff, project=project)
    ensemble.active = False  # asking it answers 409; its experts are never called
    ensemble.save(update_fields=["active"])
    decision = Decision.objects.create(
        ensemble=ensemble, prompt="hello", content_hash=content_hash("hello", None), decision="safe", p_unsafe=0.1,
        votes=[{"vote": 0, "score": 0.1, "categories": [], "error": None}], weights=[1.0], state_round=0,
        latency_ms=1.0,
    )  # fmt: skip
    sample = Sample.objects.filter(project=project).first()
    return {
        "/api/projects/": {"id": project.pk, "sample_id": sample.pk, "assignment_id": assignment.pk},
        "/api/taxonomies/": {"id": project.taxonomy_id},
        "/api/assignments/": {"assignment_id": assignment.pk},
        "/api/exports/": {"id": export.pk, "export_id": export.pk, "name": "manifest.json"},
        "/api/imports/": {"id": ImportBatch.objects.filter(project=project).first().pk},
        "/api/jury-jobs/": {"job_id": jury_job.pk},
        "/api/generation-jobs/": {"job_id": generation_job.pk},
        "/api/training-runs/": {"run_id": training_run.pk},
        "/api/evaluation-runs/": {"run_id": evaluation_run.pk},
        "/api/moderation/decisions/": {"decision_id": decision.pk},
        "/api/moderation/": {"slug": ensemble.slug},
    }


def _summary(error: BaseException) -> str:
    """The first line of each failed check, e.g. 'Response violates schema: ... (status 200)'."""
    parts = error.exceptions if isinstance(error, BaseExceptionGroup) else [error]
    return "; ".join(" ".join(str(part).split())[:1000] for part in parts)


def _ids_for(path: str, real_ids: dict[str, dict[str, object]]) -> dict[str, object]:
    return next((ids for prefix, ids in real_ids.items() if path.startswith(prefix)), {})


def test_api_answers_without_5xx_and_as_documented(in_process_requests, staff, real_ids):
    headers = {"Authorization": f"Token {Token.objects.create(user=staff).key}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, headers=headers)
    failures: dict[str, str] = {}
    answers: dict[str, set[int]] = {}
    requests = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for use_real_ids in (False, True):
            real = _ids_for(operation.path, real_ids) if use_real_ids else {}

            @given(case=operation.as_strategy())
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
            def call(case):  # run at once, inside this iteration: the loop variables are the current ones
                nonlocal requests
                requests += 1
                for name in set(real) & set(case.path_parameters or {}):  # noqa: B023
                    case.path_parameters[name] = real[name]  # noqa: B023
                response = case.call(headers=headers)
                answers.setdefault(operation.label, set()).add(response.status_code)  # noqa: B023
                case.validate_response(response, checks=CHECKS)

            try:
                call()
            except (Exception, BaseExceptionGroup) as error:  # a failed check, reported per operation below
                failures[f"{operation.label}{' (real ids)' if real else ''}"] = _summary(error)
    print(f"schemathesis: {requests} requests, {len(failures)} failing operations")
    for label, codes in sorted(answers.items()):
        print(f"answered {label}: {sorted(codes)}")
    for label, summary in failures.items():
        print(f"FAIL {label}: {summary}")
    assert failures == {}
    never_read = {label for label, codes in answers.items() if label.startswith("GET ") and 200 not in codes}
    assert never_read <= {"GET /api/evaluation-runs/compare/"}  # its run ids are a query parameter
