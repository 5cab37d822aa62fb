"""The embedded default with AEGIS_EMBEDDED_BROKER=1 (scripts/demo): jobs go through kombu's
SQLAlchemy transport on a SQLite file to a real Celery worker, and the job pages say when no worker
runs. The end-to-end test runs in processes of its own (a SQLite database file, since the worker
must see the rows); every wait polls with a generous deadline."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psutil
import pytest

from annotation.models import ExportSnapshot
from core.selectors import worker_notice

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).with_name("embedded_scenario.py")
sqlite_pass = pytest.mark.skipif(
    bool(os.environ.get("REDIS_URL") or os.environ.get("DATABASE_URL")), reason="the embedded default (SQLite pass)"
)


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        AEGIS_VAR_DIR=str(var_dir), MEDIA_ROOT=str(var_dir / "media"), AEGIS_EMBEDDED_BROKER="1",
        AEGIS_WORKER_BEAT_SECONDS="0.5", DJANGO_SETTINGS_MODULE="config.settings", PYTHONPATH=str(ROOT),
    )  # fmt: skip
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def wait_for(check, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def embedded(tmp_path):
    """A migrated SQLite database file with a project of 50 labelled samples, and its environment."""
    env = embedded_env(tmp_path / "var")
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"id": f"s{i}", "prompt": f"question {i}", "response": f"answer {i}",
                        "prompt_label": "safe", "response_label": "safe"}) + "\n"
            for i in range(50)
        ),
        encoding="utf-8",
    )  # fmt: skip
    run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env)
    run([sys.executable, str(SCENARIO), "prepare", str(rows)], env)
    return env


def export(env: dict[str, str], deadline: float) -> list[dict]:
    out = run([sys.executable, str(SCENARIO), "export", str(deadline)], env, timeout=deadline + 120)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    """A worker as scripts/demo starts it; returns once its presence file is there."""
    var = Path(env["AEGIS_VAR_DIR"])
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "threads", "--concurrency", "2",
         "--queues", "default,gpu,supervise", "--beat", "--schedule", str(var / "celerybeat-schedule"),
         "--loglevel", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: list((var / "workers").glob(f"*:{worker.pid}")), "the worker's presence file")
    except BaseException:
        stop_worker(worker)
        raise
    return worker


def stop_worker(worker: subprocess.Popen) -> None:
    """SIGTERM, as scripts/demo sends on exit; SIGKILL to the group only if it does not stop."""
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def export_row(env: dict[str, str], pk: int) -> tuple[str, int, str]:
    database = Path(env["AEGIS_VAR_DIR"]) / "aegis.sqlite3"
    with closing(sqlite3.connect(database, timeout=30)) as db:
        return db.execute("SELECT status, done, worker FROM annotation_exportsnapshot WHERE id = ?", (pk,)).fetchone()


@sqlite_pass
def test_a_job_runs_in_a_real_worker_on_the_embedded_broker(embedded):
    worker = start_worker(embedded)
    try:
        processes = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
        started, ended = export(embedded, deadline=120)
    finally:
        stop_worker(worker)
    # The request side returned with the job still pending, and saw a worker (no notice).
    assert started["status"] == "pending" and started["notice"] == ""
    assert (ended["status"], ended["done"], ended["error"]) == ("succeeded", 50, "")
    assert ended["worker"].endswith(f":{worker.pid}")  # run by the worker, not in the request's process
    assert worker.returncode == 0
    assert not any((Path(embedded["AEGIS_VAR_DIR"]) / "workers").iterdir())  # a stopped worker removes its file
    wait_for(lambda: not any(_alive(process) for process in processes), "the worker's processes (beat) to end", 30)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@sqlite_pass
def test_without_a_worker_the_job_waits_and_says_so_until_one_starts(embedded):
    started, ended = export(embedded, deadline=3)
    assert started["status"] == "pending"
    assert started["notice"].startswith("No worker is running")
    assert ended["status"] == "pending"  # queued on the broker, not run in-process
    worker = start_worker(embedded)  # the forgotten worker, started late, takes the queued job
    try:
        status, done, held_by = wait_for(
            lambda: (row := export_row(embedded, started["pk"]))[0] in ("succeeded", "failed") and row,
            "the queued export to finish",
        )
    finally:
        stop_worker(worker)
    assert (status, done, held_by.rsplit(":", 1)[1]) == ("succeeded", 50, str(worker.pid))


def import_row(env: dict[str, str], pk: int) -> tuple[str, int, int, str]:
    database = Path(env["AEGIS_VAR_DIR"]) / "aegis.sqlite3"
    with closing(sqlite3.connect(database, timeout=30)) as db:
        query = "SELECT status, attempts, created_count, error FROM annotation_importbatch WHERE id = ?"
        return db.execute(query, (pk,)).fetchone()


@sqlite_pass
def test_a_job_whose_worker_is_killed_outright_runs_again_on_the_next_worker(embedded, tmp_path):
    """SIGKILL loses the broker's message (taken off the queue on receipt); supervision, run by the
    next worker's beat, sees the dead holder and sends the job again."""
    env = {**embedded, "AEGIS_JOB_HEARTBEAT_SECONDS": "0.5", "AEGIS_JOB_STALE_SECONDS": "3",
           "AEGIS_SUPERVISE_SECONDS": "1", "AEGIS_JOB_DISPATCH_WINDOW": "3",
           "AEGIS_JOB_MAX_ATTEMPTS": "10"}  # fmt: skip
    rows = tmp_path / "big.jsonl"
    with rows.open("w", encoding="utf-8") as stream:
        for i in range(40_000):
            stream.write(json.dumps({"id": f"b{i}", "prompt": f"question {i}?", "response": f"answer {i} " * 10,
                                     "prompt_label": "safe", "response_label": "safe"}) + "\n")  # fmt: skip
    worker = start_worker(env)
    try:
        out = run([sys.executable, str(SCENARIO), "import", str(rows)], env)
        pk = json.loads(out.splitlines()[-1])["pk"]
        wait_for(lambda: import_row(env, pk)[0] == "running", "the import to be under way")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        assert import_row(env, pk)[0] == "running", "the import finished before the kill: make it bigger"
        worker = start_worker(env)
        status, attempts, created, error = wait_for(
            lambda: (row := import_row(env, pk))[0] in ("succeeded", "failed") and row, "the import to end", 300
        )
    finally:
        if worker.poll() is None:
            stop_worker(worker)
    assert (status, created, error) == ("succeeded", 40_000, "")
    assert attempts >= 2


@pytest.fixture
def embedded_settings(settings, tmp_path):
    settings.AEGIS_EMBEDDED_BROKER = True
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.AEGIS_WORKER_BEAT_DIR = tmp_path / "workers"
    settings.AEGIS_WORKER_BEAT_SECONDS = 5
    return settings


def test_the_export_page_shows_a_forgotten_worker(embedded_settings, project, admin_client):
    ExportSnapshot.objects.create(project=project, formats=["jsonl"])  # pending: no worker took it
    page = admin_client.get(f"/console/projects/{project.pk}/exports/").content.decode()
    assert "No worker is running" in page and "data-refresh-while-running" in page


def test_presence_files_count_only_while_fresh(embedded_settings):
    folder = embedded_settings.AEGIS_WORKER_BEAT_DIR
    assert worker_notice().startswith("No worker is running")  # no folder yet
    folder.mkdir()
    beat = folder / "host:123"
    beat.touch()
    assert worker_notice() == ""
    old = time.time() - 16  # more than three beats ago: a worker killed outright
    os.utime(beat, (old, old))
    assert worker_notice().startswith("No worker is running")
