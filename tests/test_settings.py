"""Settings from the environment: production checks, the secret key, the Celery switch."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    unset = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "AEGIS_EMBEDDED_BROKER")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True
    )


def test_production_settings_pass_check_deploy(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="x" * 20 + "a-long-and-random-production-secret-key-123",
        ALLOWED_HOSTS="aegis.example.org",
        AEGIS_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_secret_key_is_required_without_debug(tmp_path):
    result = manage("check", DEBUG="0", AEGIS_VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_development_key_is_made_once_and_kept(tmp_path):
    assert manage("check", AEGIS_VAR_DIR=str(tmp_path)).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert manage("check", AEGIS_VAR_DIR=str(tmp_path)).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key and len(key) >= 50


def test_embedded_default_uses_sqlite_and_in_process_tasks(tmp_path):
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.DATABASES['default']['NAME'])"
    )
    result = manage("shell", "--no-imports", "-c", code, AEGIS_VAR_DIR=str(tmp_path))
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True", str(tmp_path / "aegis.sqlite3")]
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        code + ";print(s.CELERY_BROKER_URL)",
        AEGIS_VAR_DIR=str(tmp_path),
        DATABASE_URL="postgres://u@db:5432/aegis",
        REDIS_URL="redis://cache:6379/0",
    )
    assert result.stdout.split() == ["core.postgresql", "False", "aegis", "redis://cache:6379/0"]


def test_postgresql_prepares_repeated_statements_unless_turned_off(tmp_path):
    code = "from django.conf import settings as s;print(s.DATABASES['default']['OPTIONS']['prepare_threshold'])"
    postgres = {"AEGIS_VAR_DIR": str(tmp_path), "DATABASE_URL": "postgres://u@db:5432/aegis"}
    assert manage("shell", "--no-imports", "-c", code, **postgres).stdout.split() == ["5"]
    result = manage("shell", "--no-imports", "-c", code, **postgres, DB_PREPARE_THRESHOLD="")
    assert result.stdout.split() == ["None"]  # for a pooler in transaction mode
    result = manage("shell", "--no-imports", "-c", code, **postgres, DB_PREPARE_THRESHOLD="five")
    assert result.returncode != 0 and "DB_PREPARE_THRESHOLD='five': expected a whole number" in result.stderr


def test_embedded_broker_is_a_sqlite_file_and_redis_wins_over_it(tmp_path):
    code = "from django.conf import settings as s;print(s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL)"
    result = manage("shell", "--no-imports", "-c", code, AEGIS_VAR_DIR=str(tmp_path), AEGIS_EMBEDDED_BROKER="1")
    assert result.stdout.split() == ["False", f"sqla+sqlite:///{tmp_path / 'celery-broker.sqlite3'}"]
    result = manage(
        "shell", "--no-imports", "-c", code, AEGIS_VAR_DIR=str(tmp_path), AEGIS_EMBEDDED_BROKER="1",
        REDIS_URL="redis://cache:6379/0",
    )  # fmt: skip
    assert result.stdout.split() == ["False", "redis://cache:6379/0"]


def web_process_modules(tmp_path, *names: str) -> list[str]:
    """Which of ``names`` a web process has imported once config.wsgi is loaded (as gunicorn's master
    does under --preload), with jobs going to a Redis broker (nothing connects to it)."""
    code = f"import sys, config.wsgi; print(*(name in sys.modules for name in {names!r}))"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **env,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "AEGIS_VAR_DIR": str(tmp_path),
            "REDIS_URL": "redis://redis.invalid:6379/0",
        },
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_web_app_does_not_import_torch(tmp_path):
    assert web_process_modules(tmp_path, "torch") == ["False"]


def test_web_process_loads_its_views_and_the_job_broker_before_the_first_request(tmp_path):
    """Else a gunicorn worker's first request imports the views, and its first started job Celery's
    tasks, transport and result backend: a few tenths of a second each (config/request_modules.py)."""
    names = ("annotation.api_projects", "jury.tasks", "kombu.transport.redis", "celery.backends.redis")
    assert web_process_modules(tmp_path, *names) == ["True"] * len(names)


def test_embedded_sqlite_writes_in_wal_mode_with_immediate_transactions(tmp_path):
    """Readers never wait on the writer (WAL); a write takes the lock when its transaction starts
    (BEGIN IMMEDIATE), so it waits in the busy handler instead of failing half-way on an upgrade."""
    code = (
        "from django.db import connection, transaction;"
        "c = connection.cursor();"
        "print(*[c.execute(f'PRAGMA {p}').fetchone()[0] for p in ('journal_mode', 'synchronous', 'busy_timeout')]);"
        "from django.test.utils import CaptureQueriesContext;"
        "q = CaptureQueriesContext(connection); q.__enter__();"
        "transaction.atomic().__enter__(); c.execute('SELECT 1'); print(q.captured_queries[0]['sql'])"
    )
    result = manage("shell", "--no-imports", "-c", code, AEGIS_VAR_DIR=str(tmp_path))
    assert result.stdout.split() == ["wal", "1", "30000", "BEGIN", "IMMEDIATE"], result.stderr


def test_web_app_and_workers_leave_heavy_readers_unloaded(tmp_path):
    """pyarrow (Parquet import/export, blends) loads when a Parquet file is read or written, and
    scikit-learn with scipy when a metric or agreement statistic is computed, not in every
    gunicorn worker and Celery child at start-up (pyarrow alone is about 30 MB each)."""
    assert web_process_modules(tmp_path, "pyarrow", "sklearn", "scipy") == ["False", "False", "False"]
