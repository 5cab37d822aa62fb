"""Exports in the Aegis 2.0 release format, written atomically."""

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from ..exporting import (
    DEFAULT_SPLIT_RATIOS,
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    SPLITS,
    SplitFiles,
    check_split_ratios,
    file_digest,
    split_of,
)
from ..models import ExportSnapshot, JobStatus, Project
from ..selectors import check_export_filters, export_rows


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
