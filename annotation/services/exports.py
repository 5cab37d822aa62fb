"""Exports in the Aegis 2.0 format (profiles: default, release, raw), written atomically."""

import uuid
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from core.files import atomic_folder
from core.jobs import JobCancelled, JobRun, cancel_job

from ..dataset_card import CARD_NAME
from ..exporting import DEFAULT_SPLIT_RATIOS, check_split_ratios, file_digest
from ..models import ExportProfile, ExportSnapshot, Project
from ..selectors import check_export_filters
from .export_profiles import profile_options, write_profile_files

PROGRESS_ROWS = 1000  # rows between progress records and cancel checks


def start_export(
    project: Project,
    *,
    profile: str = ExportProfile.DEFAULT,
    formats: list[str] | None = None,
    split_ratios: dict[str, float] | None = None,
    split_seed: str = "aegis",
    filters: dict[str, Any] | None = None,
    directory: str | Path | None = None,
    created_by=None,
) -> ExportSnapshot:
    """Records an export to run (now or in a worker), after checking its options."""
    formats, split_ratios = profile_options(profile, formats, split_ratios)
    return ExportSnapshot.objects.create(
        project=project,
        profile=profile,
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
    def checkpoint(number: int) -> None:
        if number % PROGRESS_ROWS == 0:
            run.progress(done=number)
            if run.cancel_requested():
                raise JobCancelled

    manifest = _manifest(snapshot, write_profile_files(snapshot, folder, checkpoint), folder)
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
    """Exports a project's samples in the Aegis 2.0 columns with a dataset card (see ``start_export``)."""
    return run_export(start_export(project, **options))


def cancel_export(snapshot: ExportSnapshot) -> None:
    """Stops an export between rows (its temporary folder is removed); one not started ends at once."""
    cancel_job(snapshot)


def _manifest(snapshot: ExportSnapshot, written: dict[str, Any], folder: Path) -> dict[str, Any]:
    taxonomy = snapshot.project.taxonomy
    counts = written["counts"]
    return {
        "format": "aegis-2.0",
        **written,
        "snapshot": snapshot.pk,
        "project": snapshot.project.slug,
        "taxonomy": {"slug": taxonomy.slug, "version": taxonomy.version, "name": taxonomy.name},
        "needs_caution_policy": snapshot.project.needs_caution_policy,
        "split": {"seed": snapshot.split_seed, "ratios": snapshot.split_ratios, "by": "sha256(seed, id)"},
        "filters": snapshot.filters,
        "files": {
            path.name: (
                {**file_digest(path), "kind": "dataset card"}
                if path.name == CARD_NAME
                else {
                    **file_digest(path),
                    "split": path.stem,
                    "format": path.suffix[1:],
                    "rows": counts[path.stem]["rows"],
                }
            )
            for path in sorted(folder.iterdir())
        },
        "created_at": timezone.now().isoformat(),
    }
