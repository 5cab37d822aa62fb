"""Writes of the training app: blends built from export snapshots, training runs (progress,
cancel, resume) and the guard models they register."""

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.exporting import file_digest
from annotation.models import ExportSnapshot, JobStatus
from annotation.permissions import require_admin
from core.outbound import check_server_path

from .blend import BLEND_SPLITS, BlendBuilder, BlendError, BlendOptions, read_export_split, read_topic_following
from .models import GuardModel, TrainerKind, TrainingBlend, TrainingRun
from .trainers.common import TrainingError, settings_as_dict, settings_from_dict
from .trainers.lora import LoraSettings
from .trainers.minilm import MiniLMSettings, minilm_path

SETTINGS = {TrainerKind.LORA: LoraSettings, TrainerKind.MINILM: MiniLMSettings}


def _media(*parts: str) -> Path:
    return Path(settings.MEDIA_ROOT).joinpath(*parts)


def _write_atomically(final: Path, write) -> None:
    """Runs ``write(folder)`` on a temporary folder beside ``final`` and renames it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write(temporary)
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def build_blend(export: ExportSnapshot, *, by, options: dict[str, Any] | None = None) -> TrainingBlend:
    """Renders an export's train and validation splits into a versioned blend (files + manifest)."""
    require_admin(by, export.project)
    if export.status != JobStatus.SUCCEEDED:
        raise BlendError(f"export {export.pk} is {export.status}: only a finished export can be blended")
    if (options or {}).get("topic_following"):
        check_server_path(by, str(options["topic_following"]), "read topic-following files")
    checked = BlendOptions.from_dict(options or {})
    blend = TrainingBlend.objects.create(
        project=export.project, export=export, options=checked.as_dict(), created_by=by
    )
    final = _media("blends", export.project.slug, f"{blend.pk}-{uuid.uuid4().hex[:8]}")
    try:
        manifest: dict[str, Any] = {}
        _write_atomically(final, lambda folder: manifest.update(_write_blend(blend, checked, folder)))
    except (BlendError, OSError) as error:
        TrainingBlend.objects.filter(pk=blend.pk).update(status=JobStatus.FAILED, error=str(error))
        raise BlendError(str(error)) from None
    TrainingBlend.objects.filter(pk=blend.pk).update(
        status=JobStatus.SUCCEEDED, directory=str(final), manifest=manifest
    )
    blend.refresh_from_db()
    return blend


def _write_blend(blend: TrainingBlend, options: BlendOptions, folder: Path) -> dict[str, Any]:
    export = blend.export
    builder = BlendBuilder(export.project.taxonomy, options, export.project.needs_caution_policy)
    source = Path(export.directory)
    counts: dict[str, dict[str, int]] = {}
    for split in BLEND_SPLITS:
        tally: dict[str, int] = {"examples": 0, "prompt_unsafe": 0, "response_unsafe": 0, "topic_following": 0}
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as out:
            for number, row in enumerate(read_export_split(source, split), start=1):
                example = builder.example(row, split, f"{source / split}, row {number}")
                if example is None:
                    continue
                out.write(json.dumps(example, ensure_ascii=False) + "\n")
                tally["examples"] += 1
                tally["prompt_unsafe"] += example["prompt_label"] == "unsafe"
                tally["response_unsafe"] += example["response_label"] == "unsafe"
            if split == "train" and options.topic_following:
                for example in read_topic_following(Path(options.topic_following)):
                    out.write(json.dumps(example, ensure_ascii=False) + "\n")
                    tally["examples"] += 1
                    tally["topic_following"] += 1
        counts[split] = tally
    if not counts["train"]["examples"]:
        raise BlendError(f"export {export.pk} gives no training example (skipped: {builder.skipped or 'none'})")
    return {
        "format": "aegis-guard-blend/1",
        "blend": blend.pk,
        "project": export.project.slug,
        "export": {"snapshot": export.pk, "files": (export.manifest or {}).get("files", {})},
        "taxonomy": {"slug": export.project.taxonomy.slug, "version": export.project.taxonomy.version},
        "prompt_format": "nemoguard",
        "options": options.as_dict(),
        "needs_caution_policy": builder.policy,
        "categories": builder.codes,
        "counts": counts,
        "skipped": builder.skipped,
        "files": {f"{split}.jsonl": file_digest(folder / f"{split}.jsonl") for split in BLEND_SPLITS},
        "created_at": timezone.now().isoformat(),
    }


def read_blend(blend: TrainingBlend, split: str) -> list[dict[str, Any]]:
    with (Path(blend.directory) / f"{split}.jsonl").open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream]


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def _check_base_model(by, base_model: str) -> None:
    """A Hugging Face id for anyone; a server path for staff only, inside AEGIS_SERVER_PATH_ROOTS."""
    if HUB_ID.fullmatch(base_model) and ".." not in base_model:
        return
    check_server_path(by, base_model, "train from a base model on the server")


def start_training_run(
    blend: TrainingBlend, *, by, kind: str, base_model: str = "", config: dict[str, Any] | None = None
) -> TrainingRun:
    """Checks the settings and records a run to start (now or on a worker)."""
    require_admin(by, blend.project)
    if blend.status != JobStatus.SUCCEEDED:
        raise TrainingError(f"blend {blend.pk} is {blend.status}: only a finished blend can be trained on")
    kind = TrainerKind(kind)
    checked = settings_from_dict(SETTINGS[kind], config or {})
    if kind == TrainerKind.MINILM:
        base_model = base_model or minilm_path()
    elif not base_model:
        raise TrainingError("a LoRA run needs a base model (a Hugging Face id or a local path)")
    if base_model and not (kind == TrainerKind.MINILM and base_model == minilm_path()):
        _check_base_model(by, base_model)
    return TrainingRun.objects.create(
        blend=blend,
        kind=kind,
        base_model=base_model,
        config=settings_as_dict(checked),
        directory=str(_media("runs", blend.project.slug, uuid.uuid4().hex)),
        created_by=by,
    )


def _reporter(run: TrainingRun):
    """Stores progress (at most every second) and answers whether the run was cancelled."""
    last = [0.0]

    def report(step: int, total: int, loss: float | None, eta: float | None) -> bool:
        now = time.monotonic()
        if now - last[0] >= 1.0 or step >= total:
            last[0] = now
            TrainingRun.objects.filter(pk=run.pk).update(step=step, total_steps=total, loss=loss, eta_seconds=eta)
            return TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists()
        return False

    return report


def run_training(run: TrainingRun) -> TrainingRun:
    """Trains (resuming from the run's newest checkpoint if a worker died) and registers the guard."""
    from .trainers.lora import train_lora
    from .trainers.minilm import train_minilm

    output = Path(run.directory)
    output.mkdir(parents=True, exist_ok=True)
    TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, started_at=timezone.now(), error="")
    blend = run.blend
    try:
        train, validation = read_blend(blend, "train"), read_blend(blend, "validation")
        report = _reporter(run)
        if run.kind == TrainerKind.LORA:
            metrics = train_lora(run.base_model, train, validation, output, LoraSettings(**_tuples(run.config)), report)
            artifact = output / "adapter"
        else:
            metrics = train_minilm(train, validation, output, MiniLMSettings(**_tuples(run.config)), report)
            artifact = output
    except Exception as error:
        TrainingRun.objects.filter(pk=run.pk).update(
            status=JobStatus.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now()
        )
        run.refresh_from_db()
        return run
    _finish_run(run, metrics, artifact, output)
    run.refresh_from_db()
    return run


def _tuples(config: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in config.items()}


@transaction.atomic
def _finish_run(run: TrainingRun, metrics: dict[str, Any], artifact: Path, output: Path) -> None:
    cancelled = TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists()
    manifest = {
        "run": run.pk,
        "kind": run.kind,
        "base_model": run.base_model,
        "config": run.config,
        "blend": {"id": run.blend_id, "files": (run.blend.manifest or {}).get("files", {})},
        "data_sha256": _data_checksum(run.blend),
        "metrics": metrics,
    }
    (output / "training_manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    status = JobStatus.CANCELLED if cancelled else JobStatus.SUCCEEDED
    TrainingRun.objects.filter(pk=run.pk).update(status=status, metrics=metrics, finished_at=timezone.now())
    if not cancelled:
        GuardModel.objects.update_or_create(
            run=run,
            defaults={
                "name": f"{run.blend.project.slug}-{run.kind}-run{run.pk}",
                "kind": run.kind,
                "base_model": run.base_model,
                "path": str(artifact),
                "prompt_format": "nemoguard" if run.kind == TrainerKind.LORA else "classifier",
                "taxonomy": run.blend.project.taxonomy,
            },
        )


def _data_checksum(blend: TrainingBlend) -> str:
    digest = hashlib.sha256()
    for split in BLEND_SPLITS:
        digest.update(((blend.manifest or {}).get("files", {}).get(f"{split}.jsonl", {}).get("sha256", "")).encode())
    return digest.hexdigest()


def cancel_training_run(run: TrainingRun, *, by) -> None:
    require_admin(by, run.blend.project)
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)


def training_queue(run: TrainingRun) -> str:
    """LoRA runs go to the ``gpu`` queue; the MiniLM CPU guard to ``default``."""
    return "gpu" if run.kind == TrainerKind.LORA else "default"


def train_from_export(
    export: ExportSnapshot,
    *,
    by,
    kind: str,
    base_model: str = "",
    config: dict[str, Any] | None = None,
    blend_options: dict[str, Any] | None = None,
) -> TrainingRun:
    """The "train" button: checks the settings, builds the blend, and records the run to start."""
    settings_from_dict(SETTINGS[TrainerKind(kind)], config or {})
    blend = build_blend(export, by=by, options=blend_options)
    return start_training_run(blend, by=by, kind=kind, base_model=base_model, config=config)
