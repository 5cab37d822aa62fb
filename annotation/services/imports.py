"""Imports: recording and running them, all or nothing."""

import uuid
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.files.move import file_move_safe
from django.db import IntegrityError, transaction

from core.jobs import CONNECTION_LOST, JobCancelled, JobRun, cancel_job
from core.models import JobStatus

from ..bulk import refresh_planner_statistics
from ..importing.adapters import get_adapter
from ..importing.errors import ImportDataError
from ..importing.progress import clear_progress, record_progress
from ..importing.writer import import_rows
from ..models import ImportBatch, Project, Sample
from ..search_index import defer_search_documents, index_pending_samples


def store_upload(uploaded) -> Path:
    """Keeps an uploaded file under MEDIA_ROOT/uploads for the worker that imports it: moved there
    when Django spooled it to a temporary file (over FILE_UPLOAD_MAX_MEMORY_SIZE), else written."""
    folder = Path(settings.MEDIA_ROOT) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / Path(uploaded.name).name
    if hasattr(uploaded, "temporary_file_path"):
        file_move_safe(uploaded.temporary_file_path(), str(path))
        return path
    with path.open("wb") as stream:
        for chunk in uploaded.chunks():
            stream.write(chunk)
    return path


def start_import_batch(
    project: Project,
    *,
    adapter: str,
    filename: str,
    stored_path: str = "",
    source_name: str | None = None,
    created_by=None,
) -> ImportBatch:
    """Records an import to run (now or in a worker); checks the adapter name first."""
    adapter_obj = get_adapter(adapter)
    return ImportBatch.objects.create(
        project=project,
        adapter=adapter,
        source_name=source_name or adapter_obj.source_name_for(filename),
        filename=filename,
        stored_path=stored_path,
        created_by=created_by,
    )


def run_import_batch(batch: ImportBatch) -> ImportBatch:
    """Imports the batch's stored file; on failure the batch records the error, nothing else."""
    return _run_import(batch, Path(batch.stored_path))


def import_samples(
    project: Project,
    path: str | Path,
    *,
    adapter: str,
    source_name: str | None = None,
    display_name: str | None = None,
    created_by=None,
    map_annotators: bool = False,
) -> ImportBatch:
    """Imports one file into a project, all or nothing; raises ImportDataError on bad input.

    Rows whose content is already in the project are skipped, so importing twice adds nothing.
    Annotator names become imported accounts (``imported:<name>``); ``map_annotators`` (the
    command line's ``--map-annotators``, for staff) attributes a name to the existing account of
    that username instead.
    """
    path = Path(path)
    batch = start_import_batch(
        project,
        adapter=adapter,
        filename=display_name or path.name,
        source_name=source_name,
        created_by=created_by,
    )
    return _run_import(batch, path, map_annotators=map_annotators)


COUNTS = ("rows_read", "created_count", "duplicate_count", "existing_count")


def _run_import(batch: ImportBatch, path: Path, *, map_annotators: bool = False) -> ImportBatch:
    """All or nothing in one transaction, so an interrupted import (a killed worker, Ctrl-C, a
    cancel) stores nothing and a resumed one starts again from the first row. The counts commit
    with the rows: an attempt killed between that commit and the job's success leaves the next
    attempt the counts to report, not a file to import again (it would find every row stored and
    report none created)."""
    try:
        with JobRun(batch, swallow=(), plain=(ImportDataError,)) as run:
            if not run.claimed:
                return batch
            if batch.rows_read:  # an earlier attempt committed the file and was stopped before it said so
                counts = {field: getattr(batch, field) for field in COUNTS}
            else:
                counts = _store_file(batch, path, run, map_annotators=map_annotators)
            run.succeed(done=counts["rows_read"], **counts)
    finally:
        clear_progress(batch.pk)
    if batch.status == JobStatus.SUCCEEDED:
        # After the commit, so the samples are queryable first; a kill here leaves rows that the
        # search reads on the fly and the next import of the project indexes.
        refresh_planner_statistics(Sample)
        index_pending_samples(batch.project_id)
    return batch


def _store_file(batch: ImportBatch, path: Path, run: JobRun, *, map_annotators: bool) -> dict[str, int]:
    """The file's rows and the batch's counts in one transaction; returns the counts."""
    try:
        with transaction.atomic():
            defer_search_documents()
            counts = import_rows(
                batch,
                path,
                on_progress=partial(record_progress, batch.pk),
                on_checkpoint=partial(_checkpoint, run),
                map_annotators=map_annotators,
            )
            ImportBatch.objects.filter(pk=batch.pk).update(**counts)
    except OSError as error:
        raise ImportDataError(error.strerror or str(error), batch.filename) from error
    except IntegrityError as error:
        raise ImportDataError(
            "another import stored some of these samples at the same time; nothing of this file was stored, "
            "import it again to add the rest",
            batch.filename,
        ) from error
    except ImportDataError:
        raise
    except (JobCancelled, *CONNECTION_LOST):
        raise
    except Exception as error:
        raise ImportDataError(f"unexpected {type(error).__name__}: {error}", batch.filename) from error
    return counts


def _checkpoint(run: JobRun, rows_read: int) -> None:
    """Every few stored chunks: the job's progress, and a cancel request stops the import (nothing
    stored). (The console reads the progress of every chunk from a file while the transaction is open.)"""
    run.progress(done=rows_read)
    if run.cancel_requested():
        raise JobCancelled


def cancel_import_batch(batch: ImportBatch) -> None:
    """Stops an import between chunks; nothing of its file is stored. One not started ends at once."""
    cancel_job(batch)
