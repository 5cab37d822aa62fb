"""The job kernel: starting a job (the row is the outbox), running it (one lifecycle for running,
progress, heartbeat, succeeded, failed, cancelled), cancelling it, and knowing who holds it."""

import logging
import os
import socket
import threading
import time
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone

from .files import remove_paths
from .models import Job, JobStatus

logger = logging.getLogger(__name__)

HOST = socket.gethostname()
CONNECTION_LOST = (OperationalError, InterfaceError)
# The jobs a JobRun of this process holds now (several with a thread pool): (model label, pk).
_HELD_HERE: set[tuple[str, int]] = set()


class JobCancelled(Exception):
    """Raised by a job's code when it stops at a cancel request."""


class JobLost(Exception):
    """This process no longer holds the job: supervision gave it to another worker."""


def this_worker() -> str:
    return f"{HOST}:{os.getpid()}"


def job_models() -> list[type[Job]]:
    return [model for model in apps.get_models() if issubclass(model, Job)]


# --- starting ------------------------------------------------------------------------------------


def start_job(job: Job) -> None:
    """Hands the job to the broker once the current transaction commits: the row written in the
    request's transaction is the outbox, and supervision dispatches it again if this send is lost."""
    model, pk = type(job), job.pk

    def dispatch() -> None:
        dispatch_job(model, pk)

    transaction.on_commit(dispatch, robust=True)


def dispatch_job(model: type[Job], pk: int) -> bool:
    """Sends a pending job's task to its queue; False when it is no longer pending or the broker
    cannot be reached (supervision tries again after AEGIS_JOB_DISPATCH_WINDOW seconds)."""
    from celery import current_app

    job = model.objects.filter(pk=pk).first()
    if job is None or job.status != JobStatus.PENDING:
        return False
    model.objects.filter(pk=pk).update(dispatched_at=timezone.now())
    import_module(f"{model._meta.app_label}.tasks")  # registers the app's tasks in a web process
    task = current_app.tasks[model.task_name]
    if task.app.conf.task_always_eager:
        task.apply_async((pk,))
        return True
    try:
        task.apply_async((pk,), queue=job.task_queue(), retry=False)
    except Exception as error:  # kombu's OperationalError, socket errors: the broker is away
        logger.warning("%s %s could not be queued (%s); supervision queues it again", model.__name__, pk, error)
        return False
    return True


# --- who holds a job -----------------------------------------------------------------------------


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stale_before() -> Any:
    return timezone.now() - timedelta(seconds=settings.AEGIS_JOB_STALE_SECONDS)


def _key(job: Job) -> tuple[str, int]:
    return job._meta.label, job.pk


def holder_gone(job: Job) -> bool:
    """Whether no live process holds a running job: this process with no JobRun on it (an attempt
    that ended, say a retried task), another process of this host that has exited, or a heartbeat
    older than AEGIS_JOB_STALE_SECONDS."""
    if not job.worker:
        return True
    host, _, pid = job.worker.rpartition(":")
    if host == HOST and pid.isdigit():
        if int(pid) == os.getpid():
            return _key(job) not in _HELD_HERE
        if not _process_alive(int(pid)):
            return True
    last_sign = job.heartbeat_at or job.started_at or job.created_at
    return last_sign < stale_before()


# --- ending --------------------------------------------------------------------------------------


def end_job(job: Job, status: str, *, error: str = "", held_by: str | None = None, **fields: Any) -> bool:
    """Moves a job to a final status (the only place that does), if it is unfinished and, when
    ``held_by`` is given, still held by that worker; removes a failed or cancelled job's leftovers."""
    model = type(job)
    rows = model.objects.filter(pk=job.pk).unfinished()
    if held_by is not None:
        rows = rows.filter(worker=held_by)
    now = timezone.now()
    ended = rows.update(status=status, error=error, finished_at=now, heartbeat_at=now, **fields) == 1
    if ended and status != JobStatus.SUCCEEDED:
        remove_paths(job.leftover_paths())
    job.refresh_from_db()
    return ended


def release_job(job: Job, *, held_by: str) -> bool:
    """Gives a running job whose worker is gone back to the queue (resumes where it stopped)."""
    model = type(job)
    return (
        model.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker=held_by).update(
            status=JobStatus.PENDING, worker="", dispatched_at=None
        )
        == 1
    )


def cancel_job(job: Job) -> None:
    """Asks the job to stop; one that no worker holds (pending, or its worker gone) ends at once."""
    model = type(job)
    model.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.refresh_from_db()
    if job.status == JobStatus.PENDING or (job.status == JobStatus.RUNNING and holder_gone(job)):
        rows = model.objects.filter(pk=job.pk, status=job.status, worker=job.worker)
        if rows.exists():
            end_job(job, JobStatus.CANCELLED, held_by=job.worker)
    job.refresh_from_db()


# --- running -------------------------------------------------------------------------------------


def _in_worker() -> bool:
    from celery import current_task

    return bool(current_task) and not current_task.request.is_eager


def _message(error: BaseException, plain: tuple[type[BaseException], ...]) -> str:
    return str(error) if isinstance(error, plain) else f"{type(error).__name__}: {error}"


class JobRun:
    """The lifecycle of one attempt at a job, as a context manager::

        with JobRun(job) as run:
            if not run.claimed:
                return job          # finished, cancelled, or held by a live worker
            ...
            run.progress(done, total)
            if run.cancel_requested():
                raise JobCancelled
            run.succeed(directory=...)   # optional: leaving the block succeeds

    Entering claims the job (pending, or running with its worker gone: then it resumes) and, in a
    worker, starts a heartbeat thread that writes ``heartbeat_at`` and the progress. Leaving ends it:
    succeeded, cancelled on JobCancelled, failed on any other error (re-raised unless its type is in
    ``swallow``; its text is the error for types in ``plain``, else "Type: text"). A lost database
    connection leaves the job to be retried from its last checkpoint; Ctrl-C or a shutdown marks it
    failed in-process and gives it back to the queue in a worker."""

    def __init__(
        self,
        job: Job,
        *,
        swallow: tuple[type[Exception], ...] = (),
        plain: tuple[type[Exception], ...] = (),
    ):
        self.job = job
        self.swallow = swallow
        self.plain = plain
        self.worker = this_worker()
        self.claimed = False
        self.ended = False
        self.lost = False
        self._progress: dict[str, int] = {}
        self._written_at = 0.0
        self._heartbeat: _Heartbeat | None = None

    # entering

    def __enter__(self) -> "JobRun":
        self.claimed = self._claim()
        if self.claimed:
            _HELD_HERE.add(_key(self.job))
        if self.claimed and _in_worker():
            self._heartbeat = _Heartbeat(self)
            self._heartbeat.start()
        return self

    def _claim(self) -> bool:
        job = self.job
        job.refresh_from_db()
        if job.finished:
            return False
        if job.cancel_requested and (job.status == JobStatus.PENDING or holder_gone(job)):
            end_job(job, JobStatus.CANCELLED, held_by=job.worker)
            return False
        if job.status == JobStatus.RUNNING and not holder_gone(job):
            logger.info("%s %s is held by %s; this delivery drops it", type(job).__name__, job.pk, job.worker)
            return False
        now = timezone.now()
        claimed = type(job).objects.filter(pk=job.pk, status=job.status, worker=job.worker).update(
            status=JobStatus.RUNNING,
            worker=self.worker,
            heartbeat_at=now,
            started_at=job.started_at or now,
            attempts=job.attempts + 1,
            error="",
        )
        if not claimed:
            return False
        if job.attempts:  # an earlier attempt was interrupted: clear what it left half-written
            remove_paths(job.leftover_paths())
        job.refresh_from_db()
        return True

    # while running

    def progress(self, done: int | None = None, total: int | None = None) -> None:
        """Records progress: written by the heartbeat in a worker, at most every second in-process."""
        if done is not None:
            self._progress["done"] = done
        if total is not None:
            self._progress["total"] = total
        if self._heartbeat is None and time.monotonic() - self._written_at >= 1.0:
            self._written_at = time.monotonic()
            type(self.job).objects.filter(pk=self.job.pk).update(**self._progress)

    def beat(self) -> None:
        """One heartbeat (and the latest progress); notices when the job was taken away."""
        fields: dict[str, Any] = {"heartbeat_at": timezone.now(), **self._progress}
        held = type(self.job).objects.filter(pk=self.job.pk, worker=self.worker, status=JobStatus.RUNNING)
        if not held.update(**fields):
            self.lost = True

    def cancel_requested(self) -> bool:
        """Whether someone asked the job to stop; raises JobLost if another worker holds it now."""
        state = type(self.job).objects.filter(pk=self.job.pk).values("cancel_requested", "worker").first()
        if self.lost or state is None or state["worker"] != self.worker:
            self.lost = True
            raise JobLost(f"{type(self.job).__name__} {self.job.pk} is held by another worker now")
        return state["cancel_requested"]

    # ending

    def succeed(self, **fields: Any) -> None:
        self._end(JobStatus.SUCCEEDED, **fields)

    def fail(self, error: str, **fields: Any) -> None:
        self._end(JobStatus.FAILED, error=error[:10000], **fields)

    def cancel(self, **fields: Any) -> None:
        self._end(JobStatus.CANCELLED, **fields)

    def _end(self, status: str, **fields: Any) -> None:
        self._stop_heartbeat()
        self.ended = True
        end_job(self.job, status, held_by=self.worker, **{**self._progress, **fields})

    def _stop_heartbeat(self) -> None:
        if self.claimed:
            _HELD_HERE.discard(_key(self.job))
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None

    def __exit__(self, exc_type, error, traceback) -> bool:
        self._stop_heartbeat()
        if not self.claimed or self.ended:
            return False
        if error is None:
            self.succeed()
            return False
        if isinstance(error, JobCancelled):
            self.cancel()
            return True
        if isinstance(error, JobLost):
            logger.warning("%s", error)
            return True
        if isinstance(error, CONNECTION_LOST) and _in_worker():
            self._give_back(f"lost its database connection ({error}); retried from its last checkpoint")
            return False
        if isinstance(error, Exception):
            logger.warning("%s %s failed", type(self.job).__name__, self.job.pk, exc_info=(exc_type, error, traceback))
            self._end_despite_errors(JobStatus.FAILED, _message(error, self.plain))
            return isinstance(error, self.swallow)
        # KeyboardInterrupt, SystemExit: a person or a shutdown stopped the process.
        if _in_worker():
            self._give_back(f"its worker was stopped ({exc_type.__name__})")
        else:
            self._end_despite_errors(JobStatus.FAILED, f"interrupted ({exc_type.__name__}) before it finished")
        return False

    def _end_despite_errors(self, status: str, message: str) -> None:
        """Ends the job even if the connection that failed it is broken (a fresh one is tried)."""
        for _ in range(2):
            try:
                self._end(status, error=message[:10000])
                return
            except DatabaseError:
                if connection.in_atomic_block:
                    raise
                connection.close()
        logger.error("%s %s could not be marked %s: %s", type(self.job).__name__, self.job.pk, status, message)

    def _give_back(self, why: str) -> None:
        logger.warning("%s %s %s", type(self.job).__name__, self.job.pk, why)
        try:
            close_old_connections()
            if connection.in_atomic_block:
                return
            connection.close()
            release_job(self.job, held_by=self.worker)
        except DatabaseError:  # still down: supervision re-queues it once its heartbeat is stale
            logger.warning("%s %s left to supervision", type(self.job).__name__, self.job.pk)


class _Heartbeat(threading.Thread):
    """Writes the job's heartbeat every AEGIS_JOB_HEARTBEAT_SECONDS, on its own connection."""

    def __init__(self, run: JobRun):
        super().__init__(name=f"heartbeat-{type(run.job).__name__}-{run.job.pk}", daemon=True)
        self.run_ = run
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.AEGIS_JOB_HEARTBEAT_SECONDS):
                try:
                    self.run_.beat()
                except DatabaseError as error:
                    logger.warning("heartbeat of %s failed: %s", self.name, error)
                    connection.close()
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)
