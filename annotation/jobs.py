"""Starting import and export jobs from the console's pages: record the job, which the job kernel
dispatches once the transaction commits."""

from pathlib import Path

from django.db import transaction

from core.jobs import start_job

from . import services
from .importing.detect import detect_adapter
from .importing.errors import ImportDataError
from .models import ExportSnapshot, ImportBatch, Project
from .permissions import require_admin

DETECT = "detect"


def launch_import(project: Project, *, file, adapter: str, source_name: str = "", by) -> ImportBatch:
    """Stores the upload and starts its import; ``adapter="detect"`` picks it from the columns.

    Raises ImportDataError (located) when the format cannot be told; nothing is recorded then."""
    require_admin(by, project)
    path = services.store_upload(file)
    try:
        chosen = detect_adapter(path, path.name) if adapter == DETECT else adapter
    except ImportDataError:
        _discard(path)
        raise
    with transaction.atomic():
        batch = services.start_import_batch(
            project,
            adapter=chosen,
            filename=path.name,
            stored_path=str(path),
            source_name=source_name or None,
            created_by=by,
        )
        start_job(batch)
    batch.refresh_from_db()
    return batch


def launch_export(project: Project, *, by, **options) -> ExportSnapshot:
    """Starts an export (options as ``services.start_export``); raises ValueError for bad options."""
    require_admin(by, project)
    with transaction.atomic():
        snapshot = services.start_export(project, created_by=by, **options)
        start_job(snapshot)
    snapshot.refresh_from_db()
    return snapshot


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()
