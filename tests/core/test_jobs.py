"""The job kernel in-process: lifecycle, cancel, supervision (re-queue, give up, re-send)."""

import json
import os
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import ExportSnapshot, ImportBatch
from annotation.services import cancel_import_batch, run_import_batch, start_export, start_import_batch
from core.jobs import HOST, JobRun, cancel_job
from core.models import JobStatus
from core.supervision import supervise_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tasks_here():
    """Jobs sent again by supervision run in this process (this test's rows are not committed)."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def dead_worker() -> str:
    """The host:pid of a process of this host that has exited."""
    process = subprocess.Popen(["true"])
    process.wait()
    return f"{HOST}:{process.pid}"


@pytest.fixture
def rows_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"id": f"r{i}", "prompt": f"prompt {i}", "response": None, "prompt_label": "safe"} for i in range(30)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def orphan(job, **fields):
    """Makes ``job`` look like a running job whose worker died."""
    type(job).objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker=dead_worker(), attempts=1, **fields)
    job.refresh_from_db()
    return job


def test_keyboard_interrupt_in_process_marks_the_job_failed(project):
    snapshot = start_export(project)
    with pytest.raises(KeyboardInterrupt), JobRun(snapshot) as run:
        assert run.claimed and snapshot.status == JobStatus.RUNNING
        raise KeyboardInterrupt
    snapshot.refresh_from_db()
    assert snapshot.status == JobStatus.FAILED and "interrupted (KeyboardInterrupt)" in snapshot.error


def test_a_finished_job_is_never_run_again(project):
    snapshot = start_export(project)
    with JobRun(snapshot):
        pass
    assert snapshot.status == JobStatus.SUCCEEDED and snapshot.attempts == 1
    with JobRun(snapshot) as again:
        assert not again.claimed
    assert snapshot.attempts == 1


def test_a_job_held_by_a_live_worker_is_not_taken(project):
    snapshot = start_export(project)
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.RUNNING, worker=f"{HOST}:1", heartbeat_at=timezone.now()
    )  # pid 1 lives as long as the machine
    with JobRun(snapshot) as run:
        assert not run.claimed
    assert snapshot.status == JobStatus.RUNNING


def test_cancelling_a_pending_or_orphaned_job_ends_it_at_once(project, rows_file):
    batch = start_import_batch(project, adapter="aegis2", filename="rows.jsonl", stored_path=str(rows_file))
    cancel_import_batch(batch)
    assert (batch.status, batch.cancel_requested) == (JobStatus.CANCELLED, True)
    snapshot = orphan(start_export(project), heartbeat_at=timezone.now())
    cancel_job(snapshot)
    assert snapshot.status == JobStatus.CANCELLED and snapshot.finished_at is not None


def test_cancelling_a_job_a_live_worker_holds_only_asks(project):
    snapshot = start_export(project)
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.RUNNING, worker=f"{HOST}:1", heartbeat_at=timezone.now()
    )
    cancel_job(snapshot)
    assert (snapshot.status, snapshot.cancel_requested) == (JobStatus.RUNNING, True)


def test_supervision_requeues_an_orphaned_job_which_resumes(project, rows_file):
    batch = start_import_batch(project, adapter="aegis2", filename="rows.jsonl", stored_path=str(rows_file))
    orphan(batch)
    assert supervise_jobs() == {"requeued": 1}  # in-process tasks: the re-sent job runs at once
    batch.refresh_from_db()
    assert (batch.status, batch.created_count, batch.attempts) == (JobStatus.SUCCEEDED, 30, 2)
    assert project.samples.count() == 30


def test_an_import_whose_worker_died_after_its_commit_reports_what_it_stored(project, rows_file):
    """A worker killed between the import's commit and the job's success leaves rows and counts
    stored and the job running; the next attempt reports them instead of importing the file again
    (which found every row stored and reported none created)."""
    batch = run_import_batch(
        start_import_batch(project, adapter="aegis2", filename="rows.jsonl", stored_path=str(rows_file))
    )
    orphan(batch, finished_at=None)  # what such a kill leaves
    assert supervise_jobs() == {"requeued": 1}
    batch.refresh_from_db()
    assert (batch.status, batch.rows_read, batch.created_count, batch.existing_count, batch.attempts) == (
        JobStatus.SUCCEEDED,
        30,
        30,
        0,
        2,
    )
    assert project.samples.count() == 30


def test_supervision_gives_up_after_the_attempts_and_removes_leftovers(project, settings, media_root):
    folder = media_root / "exports" / "given-up"
    snapshot = orphan(start_export(project, directory=folder))
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(attempts=settings.AEGIS_JOB_MAX_ATTEMPTS)
    leftover = folder.parent / f".{folder.name}.tmp-abc"
    leftover.mkdir(parents=True)
    (leftover / "train.jsonl").write_text("half")
    assert supervise_jobs() == {"failed": 1}
    snapshot.refresh_from_db()
    assert snapshot.status == JobStatus.FAILED
    assert "stopped" in snapshot.error and "given up after 3 attempts" in snapshot.error
    assert not leftover.exists()


def test_supervision_resends_a_job_the_broker_lost(project, settings):
    snapshot = start_export(project)
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(
        dispatched_at=timezone.now() - timedelta(seconds=settings.AEGIS_JOB_DISPATCH_WINDOW + 1)
    )
    assert supervise_jobs() == {"resent": 1}
    snapshot.refresh_from_db()
    assert snapshot.succeeded and snapshot.attempts == 1


def test_supervision_leaves_live_and_fresh_jobs_alone(project):
    start_export(project)  # pending, just sent
    held = start_export(project)
    ExportSnapshot.objects.filter(pk=held.pk).update(
        status=JobStatus.RUNNING, worker=f"{HOST}:1", heartbeat_at=timezone.now()
    )
    assert supervise_jobs() == {}
    assert set(ExportSnapshot.objects.values_list("status", flat=True)) == {JobStatus.PENDING, JobStatus.RUNNING}
    assert not ImportBatch.objects.exists()


def test_the_kernel_alone_writes_succeeded():
    """Every job's succeeded status is written in one place."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    found = subprocess.run(
        ["grep", "-rnE", r"status ?= ?JobStatus\.SUCCEEDED|\(JobStatus\.SUCCEEDED", "--include=*.py",
         "annotation", "core", "jury", "training", "evaluation", "frontend", "moderation"],
        cwd=root, capture_output=True, text=True,
    ).stdout.splitlines()  # fmt: skip
    assert found and all(line.startswith("core/") for line in found), found


def test_a_second_delivery_in_the_same_process_does_not_run_the_job_twice(project):
    """With a thread pool, a copy of the task in the same process finds the job held and leaves it."""
    snapshot = start_export(project)
    with JobRun(snapshot) as first:
        assert first.claimed
        with JobRun(ExportSnapshot.objects.get(pk=snapshot.pk)) as duplicate:
            assert not duplicate.claimed
        cancel_job(ExportSnapshot.objects.get(pk=snapshot.pk))  # held here, alive: only asks
    snapshot.refresh_from_db()
    assert (snapshot.status, snapshot.attempts, snapshot.cancel_requested) == (JobStatus.SUCCEEDED, 1, True)
