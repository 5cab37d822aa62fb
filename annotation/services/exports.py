"""Exports in the Aegis 2.0 format (profiles: default, release, raw), written atomically."""

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from ..dataset_card import CARD_NAME
from ..exporting import DEFAULT_SPLIT_RATIOS, check_split_ratios, file_digest
from ..models import ExportProfile, ExportSnapshot, JobStatus, Project
from ..selectors import check_export_filters
from .export_profiles import profile_options, write_profile_files


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
        manifest = _manifest(snapshot, write_profile_files(snapshot, temporary), temporary)
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
    """Exports a project's samples in the Aegis 2.0 columns with a dataset card (see ``start_export``)."""
    return run_export(start_export(project, **options))


def _fail_export(snapshot: ExportSnapshot, message: str) -> None:
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.FAILED, error=message, finished_at=timezone.now()
    )
    snapshot.refresh_from_db()


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
