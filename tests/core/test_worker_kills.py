"""Supervision with a real worker on PostgreSQL + Redis: the test kills the worker with SIGKILL (its
pool process, or the whole worker) in the middle of a job, restarts it, and checks that the job
finishes with nothing duplicated or lost; stops its own Redis while a job is asked for; cancels an
orphaned job. Timing-independent: every wait polls the database with a generous deadline."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.db import connection

from annotation.models import ExportSnapshot, FinalLabel, ImportBatch, Sample
from annotation.services import export_dataset, import_samples, start_export, start_import_batch
from core.jobs import cancel_job, start_job
from core.models import JobStatus
from jury.models import Juror, JuryJob, JuryVerdict
from jury.services import start_jury_job

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
FAST_SUPERVISION = {
    "AEGIS_JOB_HEARTBEAT_SECONDS": "0.5",
    "AEGIS_JOB_STALE_SECONDS": "3",
    "AEGIS_SUPERVISE_SECONDS": "1",
    "AEGIS_JOB_DISPATCH_WINDOW": "3",
    "AEGIS_JOB_MAX_ATTEMPTS": "10",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """Its own redis-server, a job worker (prefork, one pool process) and beat with the supervisor."""

    def __init__(self, tmp: Path, media: Path):
        self.tmp, self.port = tmp, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        db = connection.settings_dict
        self.env = {
            **os.environ, **FAST_SUPERVISION, "REDIS_URL": self.url, "MEDIA_ROOT": str(media), "DB_CONN_MAX_AGE": "0",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        }  # fmt: skip
        self.redis = self.worker = self.supervisor = None

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
        )
        wait_for(lambda: _answers(self.port), "redis-server to answer")

    def stop_redis(self) -> None:
        self.redis.kill()
        self.redis.wait()

    def _celery(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "warning", *args],
            cwd=ROOT, env=self.env, start_new_session=True,
        )  # fmt: skip

    def start_worker(self) -> None:
        self.worker = self._celery("-Q", "default,gpu", "--pool", "prefork", "--concurrency", "1", "-n", "jobs@%h")

    def start_supervisor(self) -> None:
        schedule = str(self.tmp / "beat-schedule")
        self.supervisor = self._celery("--beat", "-s", schedule, "-Q", "supervise", "--pool", "solo", "-n", "sup@%h")

    def kill_pool_process(self) -> None:
        children = wait_for(lambda: psutil.Process(self.worker.pid).children(), "the worker's pool process")
        for child in children:
            child.send_signal(signal.SIGKILL)

    def kill_worker(self) -> None:
        """SIGKILL to the whole worker (its process group); returns once every process of it is dead."""
        processes = [psutil.Process(self.worker.pid), *psutil.Process(self.worker.pid).children(recursive=True)]
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()
        wait_for(lambda: not any(_alive(process) for process in processes), "the killed worker's processes to end")

    def kill_in_the_middle(self, model, pk, kill: str, *, after: int = 0) -> None:
        """Waits until the job runs and has done more than ``after`` (-1: any moment it runs), freezes
        the worker (SIGSTOP), checks the job is still unfinished, then kills the pool process or the
        whole worker (and starts a new one)."""
        wait_for(running(model, pk, after=after), f"{model.__name__} {pk} to be under way")
        os.killpg(self.worker.pid, signal.SIGSTOP)
        assert not model.objects.get(pk=pk).finished, "the job finished before the kill: make it bigger"
        if kill == "pool process":
            self.kill_pool_process()
            os.killpg(self.worker.pid, signal.SIGCONT)
        else:
            self.kill_worker()
            self.start_worker()

    def stop(self) -> None:
        for process in (self.worker, self.supervisor):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.redis is not None and self.redis.poll() is None:
            self.stop_redis()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(check, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def stack(tmp_path, media_root):
    from config.celery import app

    stack = Stack(tmp_path, media_root)
    stack.start_redis()
    before = app.conf.broker_url
    app.conf.broker_url = stack.url
    app._pool = None
    app.amqp._producer_pool = None
    yield stack
    stack.stop()
    app.conf.broker_url = before
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def many_samples(project, tmp_path):
    rows = [{"id": f"s{i}", "prompt": f"question {i}", "response": f"answer {i}", "prompt_label": "safe",
             "response_label": "safe"} for i in range(300)]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_samples(project, path, adapter="aegis2")
    return project


def running(model, pk, *, after: int = 0):
    def check():
        job = model.objects.get(pk=pk)
        return job.status == JobStatus.RUNNING and job.done > after and job
    return check


def finished(model, pk):
    return lambda: (job := model.objects.get(pk=pk)).finished and job


KILLS = ["pool process", "whole worker"]


@pytest.mark.parametrize("kill", KILLS)
def test_a_jury_job_survives_its_worker_being_killed(many_samples, server, django_user_model, stack, kill):
    project = many_samples
    server.script.update(mode="slow", delay=0.05, answer='{"User Safety": "safe", "Response Safety": "safe"}')
    host, port = server.server_address
    for name in ("a", "b"):
        Juror.objects.create(project=project, name=name, model=name, base_url=f"http://{host}:{port}/v1", concurrency=4)
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    stack.start_supervisor()
    stack.start_worker()
    job = start_jury_job(project, by=boss)
    start_job(job)
    stack.kill_in_the_middle(JuryJob, job.pk, kill, after=10)
    job = wait_for(finished(JuryJob, job.pk), "the jury job to finish", timeout=240)
    assert (job.status, job.done, job.total) == (JobStatus.SUCCEEDED, 300, 300), job.error
    assert job.attempts >= 2
    assert JuryVerdict.objects.filter(sample__project=project).count() == 600  # 2 jurors × 300, none twice
    assert FinalLabel.objects.filter(sample__project=project).count() == 300


def big_file(tmp_path, rows: int) -> Path:
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as stream:
        for i in range(rows):
            row = {"id": f"b{i}", "prompt": f"question {i}?", "response": f"answer {i} " * 10,
                   "prompt_label": "safe", "response_label": "safe"}  # fmt: skip
            stream.write(json.dumps(row) + "\n")
    return path


@pytest.mark.parametrize("kill", KILLS)
def test_an_import_survives_its_worker_being_killed(project, stack, tmp_path, kill):
    path = big_file(tmp_path, 60_000)
    stack.start_supervisor()
    stack.start_worker()
    batch = start_import_batch(project, adapter="aegis2", filename=path.name, stored_path=str(path))
    start_job(batch)
    stack.kill_in_the_middle(ImportBatch, batch.pk, kill, after=-1)  # any moment while it runs
    batch = wait_for(finished(ImportBatch, batch.pk), "the import to finish", timeout=300)
    assert (batch.status, batch.rows_read, batch.created_count) == (JobStatus.SUCCEEDED, 60_000, 60_000), batch.error
    assert batch.attempts >= 2
    assert Sample.objects.filter(project=project).count() == 60_000  # all or nothing: none twice, none lost


@pytest.mark.parametrize("kill", KILLS)
def test_an_export_survives_its_worker_being_killed(project, stack, tmp_path, kill):
    import_samples(project, big_file(tmp_path, 60_000), adapter="aegis2")
    stack.start_supervisor()
    stack.start_worker()
    snapshot = start_export(project, formats=["jsonl"], split_ratios={"train": 1.0})
    start_job(snapshot)
    stack.kill_in_the_middle(ExportSnapshot, snapshot.pk, kill, after=-1)  # any moment while it runs
    snapshot = wait_for(finished(ExportSnapshot, snapshot.pk), "the export to finish", timeout=300)
    assert snapshot.status == JobStatus.SUCCEEDED and snapshot.attempts >= 2, snapshot.error
    folder = Path(snapshot.directory)
    ids = [json.loads(line)["id"] for line in (folder / "train.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 60_000
    assert set(ids) == set(Sample.objects.filter(project=project).values_list("uid", flat=True))
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


@pytest.mark.parametrize("kill", KILLS)
def test_a_training_run_survives_its_worker_being_killed(project, stack, tmp_path, django_user_model, kill):
    from tests.training.conftest import ROWS
    from training.models import GuardModel, TrainingRun
    from training.services import build_blend, start_training_run

    path = tmp_path / "aegis.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    import_samples(project, path, adapter="aegis2")
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    export = export_dataset(project, formats=["jsonl"], split_ratios={"train": 1.0})
    blend = build_blend(export, by=boss, options={"shuffle_probability": 0, "drop_probability": 0})
    config = {"max_steps": 12, "batch_size": 2, "max_length": 32, "save_steps": 2}
    run = start_training_run(blend, by=boss, kind="minilm", config=config)
    stack.start_supervisor()
    stack.start_worker()
    start_job(run)
    stack.kill_in_the_middle(TrainingRun, run.pk, kill, after=3)  # checkpoint-2 is on disk
    run = wait_for(finished(TrainingRun, run.pk), "the training run to finish", timeout=900)
    assert (run.status, run.done, run.total) == (JobStatus.SUCCEEDED, 24, 24), run.error
    assert run.attempts >= 2
    assert GuardModel.objects.filter(run=run).count() == 1
    assert all(task["steps"] == 12 for task in run.metrics.values())


@pytest.mark.parametrize("kill", KILLS)
def test_an_evaluation_run_survives_its_worker_being_killed(project, stack, guard_server, django_user_model, kill):
    from evaluation.models import EvaluationRun
    from evaluation.services import start_evaluation_run

    guard_server.script["delays"] = {"slow-guard": 0.05}
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    guard = {"endpoint": guard_server.url, "model": "slow-guard", "prompt_format": "nemoguard",
             "options": {"concurrency": 4}}  # fmt: skip
    run = start_evaluation_run(
        by=boss, guards=[guard], benchmarks=["xstest_prompts", "simple_safety_tests"], options={"bootstrap": 0}
    )
    stack.start_supervisor()
    stack.start_worker()
    start_job(run)
    stack.kill_in_the_middle(EvaluationRun, run.pk, kill)
    run = wait_for(finished(EvaluationRun, run.pk), "the evaluation run to finish", timeout=300)
    assert (run.status, run.done, run.total) == (JobStatus.SUCCEEDED, 550, 550), run.error
    assert run.attempts >= 2
    cells = run.results["cells"]
    assert sorted(cell["benchmark"] for cell in cells) == sorted(b["label"] for b in run.benchmarks)
    for cell in cells:
        lines = (Path(run.directory) / cell["predictions"]).read_text().splitlines()
        assert len(lines) == len({json.loads(line)["uid"] for line in lines}) == cell["n"]
    assert not [p for p in Path(run.directory).rglob(".*")]  # no temporary file left


def test_a_job_asked_for_while_redis_is_down_runs_once_it_is_back(many_samples, stack):
    stack.start_supervisor()
    stack.start_worker()
    stack.stop_redis()
    snapshot = start_export(many_samples, formats=["jsonl"], split_ratios={"train": 1.0})
    start_job(snapshot)  # the broker cannot be reached: logged, the row stays pending
    assert ExportSnapshot.objects.get(pk=snapshot.pk).status == JobStatus.PENDING
    stack.start_redis()
    snapshot = wait_for(finished(ExportSnapshot, snapshot.pk), "the export to run after Redis came back", 240)
    assert snapshot.status == JobStatus.SUCCEEDED, snapshot.error


def test_cancelling_an_orphaned_job_ends_it_at_once(many_samples, server, django_user_model, stack):
    project = many_samples
    server.script.update(mode="slow", delay=0.2)
    host, port = server.server_address
    Juror.objects.create(project=project, name="a", model="a", base_url=f"http://{host}:{port}/v1", concurrency=1)
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    stack.start_worker()  # no supervisor: nothing but the cancel ends the job
    job = start_jury_job(project, by=boss)
    start_job(job)
    wait_for(running(JuryJob, job.pk), "the jury job to be under way")
    stack.kill_worker()
    cancel_job(job)
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None


def test_a_job_whose_database_connections_are_dropped_resumes(many_samples, server, django_user_model, stack):
    """PostgreSQL ends every connection of the worker in the middle of a jury job: the task gives the job
    back and retries from its last stored batch; no verdict is duplicated or lost."""
    project = many_samples
    server.script.update(mode="slow", delay=0.05, answer='{"User Safety": "safe", "Response Safety": "safe"}')
    host, port = server.server_address
    Juror.objects.create(project=project, name="a", model="a", base_url=f"http://{host}:{port}/v1", concurrency=4)
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    stack.start_worker()
    job = start_jury_job(project, by=boss)
    start_job(job)
    wait_for(running(JuryJob, job.pk, after=10), "the jury job to be under way")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    job = wait_for(finished(JuryJob, job.pk), "the jury job to finish", timeout=240)
    assert (job.status, job.done, job.total) == (JobStatus.SUCCEEDED, 300, 300), job.error
    assert JuryVerdict.objects.filter(sample__project=project).count() == 300
    assert FinalLabel.objects.filter(sample__project=project).count() == 300
