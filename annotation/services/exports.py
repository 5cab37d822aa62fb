"""Exports in the Aegis 2.0 release format, written atomically."""

import uuid
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from core.files import atomic_folder
from core.jobs import JobCancelled, JobRun, cancel_job

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
from ..models import ExportSnapshot, Project
from ..selectors import check_export_filters, export_rows

PROGRESS_ROWS = 1000  # rows between progress records and cancel checks


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
    """Writes the snapshot's files into a temporary folder, then renames it into place. The folder
    is chosen once, so an attempt resumed after a worker died writes to the same place (and finds
    its own finished folder if the worker died between the rename and the record)."""
    with JobRun(snapshot, plain=(FileExistsError,)) as run:
        if not run.claimed:
            return snapshot
        if not snapshot.directory:
            folder = f"{snapshot.pk}-{uuid.uuid4().hex[:8]}"
            snapshot.directory = str(Path(settings.MEDIA_ROOT) / "exports" / snapshot.project.slug / folder)
            ExportSnapshot.objects.filter(pk=snapshot.pk).update(directory=snapshot.directory)
        final = Path(snapshot.directory)
        manifest = _finished_manifest(snapshot, final) if run.job.attempts > 1 else None
        if manifest is None:
            if final.exists():
                raise FileExistsError(f"{final} exists already: choose a new folder")
            with atomic_folder(final) as temporary:
                manifest = _write_export(snapshot, temporary, run)
        run.succeed(manifest=manifest)
    return snapshot


def _write_export(snapshot: ExportSnapshot, folder: Path, run: JobRun) -> dict[str, Any]:
    splits = [split for split in SPLITS if snapshot.split_ratios[split] > 0]
    files = SplitFiles(folder, snapshot.formats, splits)
    try:
        for number, row in enumerate(export_rows(snapshot.project, snapshot.filters), start=1):
            files.write(split_of(row["id"], snapshot.split_ratios, snapshot.split_seed), row)
            if number % PROGRESS_ROWS == 0:
                run.progress(done=number)
                if run.cancel_requested():
                    raise JobCancelled
    finally:
        files.close()
    manifest = _manifest(snapshot, files, folder)
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    run.progress(done=sum(split["rows"] for split in manifest["counts"].values()))
    return manifest


def _finished_manifest(snapshot: ExportSnapshot, folder: Path) -> dict[str, Any] | None:
    """The manifest of this snapshot's own folder, renamed into place by an attempt that died before
    recording it."""
    try:
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return manifest if manifest.get("snapshot") == snapshot.pk else None


def export_dataset(project: Project, **options: Any) -> ExportSnapshot:
    """Exports a project's labelled samples in the Aegis 2.0 columns (see ``start_export``)."""
    return run_export(start_export(project, **options))


def cancel_export(snapshot: ExportSnapshot) -> None:
    """Stops an export between rows (its temporary folder is removed); one not started ends at once."""
    cancel_job(snapshot)


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
