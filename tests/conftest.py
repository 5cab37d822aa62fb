import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
USES_REDIS = bool(os.environ.get("REDIS_URL"))
USES_POSTGRES = "postgres" in os.environ.get("DATABASE_URL", "")
# One real vLLM server per scripts/test run: the PostgreSQL pass starts it (AEGIS_TEST_VLLM=1: any pass).
RUNS_VLLM = USES_POSTGRES or os.environ.get("AEGIS_TEST_VLLM") == "1"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "redis" in item.keywords and not USES_REDIS:
            item.add_marker(pytest.mark.skip(reason="runs in the PostgreSQL + Redis pass"))
        if "postgres" in item.keywords and not USES_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="runs in the PostgreSQL pass"))
        if "once" in item.keywords and USES_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="trains a model; runs once, in the SQLite pass"))
        if "vllm" in item.keywords and not RUNS_VLLM:
            item.add_marker(pytest.mark.skip(reason="runs in the PostgreSQL pass (or with AEGIS_TEST_VLLM=1)"))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def media_root(settings, media_dir) -> Path:
    settings.MEDIA_ROOT = media_dir
    return media_dir


@pytest.fixture(autouse=True)
def server_path_roots(settings, tmp_path_factory):
    """Staff may name files the tests write under pytest's temporary folder."""
    settings.AEGIS_SERVER_PATH_ROOTS = [*settings.AEGIS_SERVER_PATH_ROOTS, str(tmp_path_factory.getbasetemp())]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(settings.AEGIS_SHARED_DATA)
    assert path.is_dir(), f"the real data sets are expected at {path} (set AEGIS_SHARED_DATA)"
    return path


@pytest.fixture
def project(db):
    from annotation.services import create_project

    return create_project(name="Test project", slug="test")


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_user("boss", password="pw-boss-123", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def forget_process_caches():
    """The labelling path caches a frozen taxonomy's categories per process, by id, and answers
    kept for a few seconds (core.remembered: long queues, projects with ensembles); rolled-back
    tests reuse ids and remove rows without telling them, so all are emptied after each test."""
    yield
    from annotation.selectors import _frozen_taxonomy_facts
    from core.remembered import forget_everything_remembered

    _frozen_taxonomy_facts.cache_clear()
    forget_everything_remembered()


@pytest.fixture(scope="session", autouse=True)
def close_stray_connections(django_db_setup, django_db_blocker):
    """Ends connections that threads of the tests left open, so the test database can be dropped."""
    yield
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, media_dir):
    """A real Celery worker on the test database, for the PostgreSQL + Redis pass."""
    if not USES_REDIS:
        yield None
        return
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(media_dir), "DB_CONN_MAX_AGE": "0"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default,gpu",
            "--pool",
            "solo",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    yield worker
    worker.terminate()
    worker.wait(timeout=30)


def wait_until_finished(model, pk, timeout: float = 60.0):
    """Polls a job record (import batch, export snapshot) until it succeeds or fails."""
    deadline = time.monotonic() + timeout
    while True:
        record = model.objects.get(pk=pk)
        if record.status in ("succeeded", "failed") or time.monotonic() > deadline:
            return record
        time.sleep(0.2)
