"""Writes of the annotation app: projects, imports and exports (atomic, validated)."""

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from taxonomy.models import Taxonomy
from taxonomy.selectors import default_taxonomy
from taxonomy.services import freeze_taxonomy

from .exporting import (
    DEFAULT_SPLIT_RATIOS,
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    SPLITS,
    SplitFiles,
    check_split_ratios,
    file_digest,
    split_of,
)
from .importing.adapters import get_adapter
from .importing.errors import ImportDataError
from .importing.writer import import_rows
from .labels import NeedsCautionPolicy
from .models import ExportSnapshot, ImportBatch, JobStatus, Project
from .selectors import check_export_filters, export_rows


@transaction.atomic
def create_project(
    *,
    name: str,
    slug: str,
    taxonomy: Taxonomy | None = None,
    guidelines: str = "",
    annotations_per_sample: int = 3,
    needs_caution_policy: str = NeedsCautionPolicy.UNSAFE,
    created_by=None,
) -> Project:
    """A new project; its taxonomy version freezes, since labels now refer to it."""
    taxonomy = taxonomy or default_taxonomy()
    if annotations_per_sample < 1:
        raise ValueError("annotations_per_sample must be at least 1")
    freeze_taxonomy(taxonomy)
    return Project.objects.create(
        name=name,
        slug=slug,
        taxonomy=taxonomy,
        guidelines=guidelines,
        annotations_per_sample=annotations_per_sample,
        needs_caution_policy=NeedsCautionPolicy(needs_caution_policy),
        created_by=created_by,
    )


def store_upload(uploaded) -> Path:
    """Keeps an uploaded file under MEDIA_ROOT/uploads for the worker that imports it."""
    folder = Path(settings.MEDIA_ROOT) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / Path(uploaded.name).name
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
) -> ImportBatch:
    """Imports one file into a project, all or nothing; raises ImportDataError on bad input.

    Rows whose content is already in the project are skipped, so importing twice adds nothing.
    """
    path = Path(path)
    batch = start_import_batch(
        project,
        adapter=adapter,
        filename=display_name or path.name,
        source_name=source_name,
        created_by=created_by,
    )
    return _run_import(batch, path)


def _run_import(batch: ImportBatch, path: Path) -> ImportBatch:
    ImportBatch.objects.filter(pk=batch.pk).update(status=JobStatus.RUNNING)
    try:
        with transaction.atomic():
            counts = import_rows(batch, path)
    except ImportDataError as error:
        _fail_batch(batch, str(error))
        raise
    except OSError as error:
        failure = ImportDataError(error.strerror or str(error), batch.filename)
        _fail_batch(batch, str(failure))
        raise failure from error
    except IntegrityError as error:
        failure = ImportDataError(
            "another import stored some of these samples at the same time; nothing of this file was stored, "
            "import it again to add the rest",
            batch.filename,
        )
        _fail_batch(batch, str(failure))
        raise failure from error
    except Exception as error:
        _fail_batch(batch, f"{batch.filename}: unexpected {type(error).__name__}: {error}")
        raise
    ImportBatch.objects.filter(pk=batch.pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now(), **counts)
    batch.refresh_from_db()
    return batch


def _fail_batch(batch: ImportBatch, message: str) -> None:
    ImportBatch.objects.filter(pk=batch.pk).update(status=JobStatus.FAILED, error=message, finished_at=timezone.now())
    batch.refresh_from_db()


def start_export(
    project: Project,
    *,
    formats: list[str] | None = None,
    split_ratios: dict[str, float] | None = None,
    split_seed: str = "aegis",
    filters: dict[str, Any] | None = None,
    directory: str | Path | None = None,
    created_by=None,
) -> ExportSnapshot:
    """Records an export to run (now or in a worker), after checking its options."""
    formats = list(formats or EXPORT_FORMATS)
    SplitFiles.check_formats(formats)
    return ExportSnapshot.objects.create(
        project=project,
        formats=formats,
        split_ratios=check_split_ratios(split_ratios or DEFAULT_SPLIT_RATIOS),
        split_seed=split_seed,
        filters=check_export_filters(filters or {}),
        directory=str(directory) if directory else "",
        created_by=created_by,
    )


def run_export(snapshot: ExportSnapshot) -> ExportSnapshot:
    """Writes the snapshot's files into a temporary folder, then renames it into place."""
    project = snapshot.project
    final = (
        Path(snapshot.directory)
        if snapshot.directory
        else Path(settings.MEDIA_ROOT) / "exports" / project.slug / f"{snapshot.pk}-{uuid.uuid4().hex[:8]}"
    )
    if final.exists():
        _fail_export(snapshot, f"{final} exists already: choose a new folder")
        raise FileExistsError(snapshot.error)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(status=JobStatus.RUNNING)
    try:
        splits = [split for split in SPLITS if snapshot.split_ratios[split] > 0]
        files = SplitFiles(temporary, snapshot.formats, splits)
        try:
            for row in export_rows(project, snapshot.filters):
                files.write(split_of(row["id"], snapshot.split_ratios, snapshot.split_seed), row)
        finally:
            files.close()
        manifest = _manifest(snapshot, files, temporary)
        (temporary / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        os.rename(temporary, final)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        _fail_export(snapshot, f"{type(error).__name__}: {error}")
        raise
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.SUCCEEDED, directory=str(final), manifest=manifest, finished_at=timezone.now()
    )
    snapshot.refresh_from_db()
    return snapshot


def export_dataset(project: Project, **options: Any) -> ExportSnapshot:
    """Exports a project's labelled samples in the Aegis 2.0 columns (see ``start_export``)."""
    return run_export(start_export(project, **options))


def _fail_export(snapshot: ExportSnapshot, message: str) -> None:
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.FAILED, error=message, finished_at=timezone.now()
    )
    snapshot.refresh_from_db()


def _manifest(snapshot: ExportSnapshot, files: SplitFiles, folder: Path) -> dict[str, Any]:
    taxonomy = snapshot.project.taxonomy
    counts = files.summary()
    return {
        "format": "aegis-2.0",
        "columns": list(EXPORT_COLUMNS),
        "snapshot": snapshot.pk,
        "project": snapshot.project.slug,
        "taxonomy": {"slug": taxonomy.slug, "version": taxonomy.version, "name": taxonomy.name},
        "needs_caution_policy": snapshot.project.needs_caution_policy,
        "split": {"seed": snapshot.split_seed, "ratios": snapshot.split_ratios, "by": "sha256(seed, id)"},
        "filters": snapshot.filters,
        "counts": counts,
        "files": {
            path.name: {
                **file_digest(path),
                "split": path.stem,
                "format": path.suffix[1:],
                "rows": counts[path.stem]["rows"],
            }
            for path in sorted(folder.iterdir())
        },
        "created_at": timezone.now().isoformat(),
    }
