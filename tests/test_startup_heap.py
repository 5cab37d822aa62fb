"""The web app and the Celery worker freeze their start-up heap before they fork (config/startup_heap.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(code: str, tmp_path) -> str:
    unset = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", AEGIS_VAR_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_wsgi_app_freezes_what_it_loaded(tmp_path):
    frozen, tracked = run("import gc, config.wsgi; print(gc.get_freeze_count(), len(gc.get_objects()))", tmp_path)
    assert int(frozen) > 20_000 and int(tracked) < int(frozen)  # what is left to walk is what came after


def test_the_celery_worker_freezes_what_it_loaded_before_its_pool_forks(tmp_path):
    code = (
        "import gc, django; django.setup();"
        "from config.celery import app; from celery.signals import worker_init;"
        "before = gc.get_freeze_count(); worker_init.send(sender=None);"
        "print(before, gc.get_freeze_count())"
    )
    before, after = run(code, tmp_path)
    assert int(before) == 0 and int(after) > 20_000
