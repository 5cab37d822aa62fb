"""Redis down. The task broker away: a job start still answers 202 (the job's row is the outbox;
supervision sends it when the broker is back). The rate-limit and login-counter store away: a
request that needs it (Basic auth, throttled views) answers 503 with Retry-After, others answer."""

import socket
from contextlib import contextmanager

import pytest
from celery import Celery
from django.test import Client

from annotation.models import ExportSnapshot
from core.models import JobStatus


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_down():
    """The current Celery app (what core.jobs sends through) is one whose Redis broker refuses connections."""
    from config.celery import app

    down = Celery("broker-down", broker=f"redis://127.0.0.1:{closed_port()}/0", set_as_current=False)
    down.conf.update(task_always_eager=False, broker_connection_timeout=2, broker_connection_retry=False)
    down.set_current()
    yield down
    app.set_current()
    down.close()


@pytest.mark.django_db(transaction=True)
def test_a_job_start_answers_202_while_the_broker_is_down(admin_client, project, broker_down):
    response = admin_client.post(
        f"/api/projects/{project.pk}/exports/", {"formats": ["jsonl"]}, content_type="application/json"
    )
    assert response.status_code == 202, response.content
    snapshot = ExportSnapshot.objects.get(pk=response.json()["id"])
    assert snapshot.status == JobStatus.PENDING and snapshot.dispatched_at is not None  # tried, kept to resend


@contextmanager
def throttle_store_down(settings):
    """The "throttle" cache on a closed port, and axes' handler made on it (as when a process starts)."""
    from axes.handlers.proxy import AxesProxyHandler

    working = settings.CACHES
    settings.CACHES = {
        **working,
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        },
    }
    AxesProxyHandler.get_implementation(force=True)
    try:
        yield
    finally:
        settings.CACHES = working
        AxesProxyHandler.get_implementation(force=True)


@pytest.mark.django_db
def test_basic_auth_answers_503_while_the_login_counter_is_down(client, django_user_model, settings):
    ann = django_user_model.objects.create_user("ann", password="pw-ann-12345")
    signed_in = Client()
    signed_in.force_login(ann)  # a session signed in before: it needs no counter
    with throttle_store_down(settings):
        response = client.get("/api/projects/", HTTP_AUTHORIZATION="Basic YW5uOnB3LWFubi0xMjM0NQ==")  # ann's
        assert response.status_code == 503, response.content
        assert response.json()["detail"].startswith("Redis is unreachable") and response["Retry-After"] == "30"
        assert signed_in.get("/api/projects/").status_code == 200
