"""Writes of the training app: blends built from export snapshots, training runs (progress,
cancel, resume) and the guard models they register."""

import hashlib
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.exporting import file_digest
from annotation.models import ExportSnapshot
from annotation.permissions import require_admin
from core.files import atomic_file, atomic_folder
from core.jobs import JobRun, cancel_job, start_job
from core.models import JobStatus
from core.outbound import check_server_path
from guards.formats.registry import CLASSIFIER
from guards.loading import is_hub_id

from .blend import BLEND_SPLITS, BlendBuilder, BlendError, BlendOptions, read_export_split, read_topic_following
from .models import GuardModel, TrainerKind, TrainingBlend, TrainingRun
from .trainers.common import TrainingError, settings_as_dict, settings_from_dict
from .trainers.lora import LoraSettings
from .trainers.minilm import MiniLMSettings, minilm_path

SETTINGS = {TrainerKind.LORA: LoraSettings, TrainerKind.MINILM: MiniLMSettings}


def _media(*parts: str) -> Path:
    return Path(settings.MEDIA_ROOT).joinpath(*parts)


def start_blend(export: ExportSnapshot, *, by, options: dict[str, Any] | None = None) -> TrainingBlend:
    """Checks the options and records a blend of the export to build (in a worker or now)."""
    require_admin(by, export.project)
    if not export.succeeded:
        raise BlendError(f"export {export.pk} is {export.status}: only a finished export can be blended")
    if (options or {}).get("topic_following"):
        check_server_path(by, str(options["topic_following"]), "read topic-following files")
    checked = BlendOptions.from_dict(options or {})
    blend = TrainingBlend.objects.create(
        project=export.project, export=export, options=checked.as_dict(), created_by=by
    )
    blend.directory = str(_media("blends", export.project.slug, f"{blend.pk}-{uuid.uuid4().hex[:8]}"))
    TrainingBlend.objects.filter(pk=blend.pk).update(directory=blend.directory)
    return blend


def run_blend(blend: TrainingBlend) -> TrainingBlend:
    """Renders the export's train and validation splits into the blend's folder (written whole, then
    renamed into place); a bad export or option ends as a failed blend."""
    with JobRun(blend, swallow=(BlendError,), plain=(BlendError,)) as run:
        if not run.claimed:
            return blend
        final = Path(blend.directory)
        if final.exists():  # an attempt that died after the rename wrote it whole
            shutil.rmtree(final)
        try:
            with atomic_folder(final) as folder:
                manifest = _write_blend(blend, BlendOptions.from_dict(blend.options), folder)
        except OSError as error:
            raise BlendError(str(error)) from None
        run.succeed(manifest=manifest)
    return blend


def build_blend(export: ExportSnapshot, *, by, options: dict[str, Any] | None = None) -> TrainingBlend:
    """Records and builds a blend in this process; raises BlendError when it cannot be built."""
    blend = run_blend(start_blend(export, by=by, options=options))
    if not blend.succeeded:
        raise BlendError(blend.error)
    return blend


def start_waiting_runs(blend: TrainingBlend) -> None:
    """Queues the runs recorded on a blend while it was being built (they fail if it failed)."""
    for run in blend.runs.filter(status=JobStatus.PENDING):
        start_job(run)


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


def _check_base_model(by, base_model: str) -> None:
    """A Hugging Face id for anyone (read from the Hugging Face cache only); a server path for
    staff only, inside AEGIS_SERVER_PATH_ROOTS."""
    if is_hub_id(base_model):
        return
    check_server_path(by, base_model, "train from a base model on the server")


def _checked_settings(kind: str, config: dict[str, Any] | None) -> MiniLMSettings | LoraSettings:
    """The trainer's settings from the page's or the API's JSON, or a TrainingError that says what is wrong."""
    checked = settings_from_dict(SETTINGS[TrainerKind(kind)], {} if config is None else config)
    if checked.max_steps <= 0 and checked.epochs <= 0:
        raise TrainingError("training settings: epochs and max_steps are both 0 or less: nothing would be trained")
    return checked


def start_training_run(
    blend: TrainingBlend, *, by, kind: str, base_model: str = "", config: dict[str, Any] | None = None
) -> TrainingRun:
    """Checks the settings and records a run to start (now or on a worker)."""
    require_admin(by, blend.project)
    if blend.finished and not blend.succeeded:
        raise TrainingError(f"blend {blend.pk} is {blend.status}: only a finished blend can be trained on")
    kind = TrainerKind(kind)
    checked = _checked_settings(kind, config)
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


def _reporter(job_run: JobRun):
    """Stores progress (at most every second) and answers whether the run was cancelled."""
    last = [0.0]

    def report(step: int, total: int, loss: float | None, eta: float | None) -> bool:
        now = time.monotonic()
        if now - last[0] >= 1.0 or step >= total:
            last[0] = now
            TrainingRun.objects.filter(pk=job_run.job.pk).update(done=step, total=total, loss=loss, eta_seconds=eta)
            return job_run.cancel_requested()
        return False

    return report


def run_training(run: TrainingRun) -> TrainingRun:
    """Trains (resuming from the run's newest checkpoint if a worker died) and registers the guard.
    A run whose blend is still being built waits (the blend's task starts it)."""
    from .distributed import train_lora_run
    from .trainers.minilm import train_minilm

    if not run.blend.finished:
        return run
    with JobRun(run, swallow=(Exception,)) as job_run:
        if not job_run.claimed:
            return run
        blend = run.blend
        if not blend.succeeded:
            raise TrainingError(f"its blend {blend.pk} {blend.status}: {blend.error}")
        output = Path(run.directory)
        output.mkdir(parents=True, exist_ok=True)
        train, validation = read_blend(blend, "train"), read_blend(blend, "validation")
        report = _reporter(job_run)
        if run.kind == TrainerKind.LORA:
            lora = LoraSettings(**_tuples(run.config))
            metrics = train_lora_run(run.base_model, train, validation, output, lora, report)  # one process per GPU
            artifact = output / "adapter"
        else:
            metrics = train_minilm(train, validation, output, MiniLMSettings(**_tuples(run.config)), report)
            artifact = output
        _finish_run(job_run, metrics, artifact, output)
    run.refresh_from_db()
    return run


def _tuples(config: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in config.items()}


@transaction.atomic
def _finish_run(job_run: JobRun, metrics: dict[str, Any], artifact: Path, output: Path) -> None:
    run = job_run.job
    cancelled = job_run.cancel_requested()
    manifest = {
        "run": run.pk,
        "kind": run.kind,
        "base_model": run.base_model,
        "config": run.config,
        "blend": {"id": run.blend_id, "files": (run.blend.manifest or {}).get("files", {})},
        "data_sha256": _data_checksum(run.blend),
        "metrics": metrics,
    }
    with atomic_file(output / "training_manifest.json") as stream:
        stream.write(json.dumps(manifest, indent=2))
    if cancelled:
        job_run.cancel(metrics=metrics)
        return
    GuardModel.objects.update_or_create(
        run=run,
        defaults={
            "name": f"{run.blend.project.slug}-{run.kind}-run{run.pk}",
            "kind": run.kind,
            "base_model": run.base_model,
            "path": str(artifact),
            "prompt_format": "nemoguard" if run.kind == TrainerKind.LORA else CLASSIFIER,
            "taxonomy": run.blend.project.taxonomy,
        },
    )
    job_run.succeed(metrics=metrics)


def _data_checksum(blend: TrainingBlend) -> str:
    digest = hashlib.sha256()
    for split in BLEND_SPLITS:
        digest.update(((blend.manifest or {}).get("files", {}).get(f"{split}.jsonl", {}).get("sha256", "")).encode())
    return digest.hexdigest()


def cancel_training_run(run: TrainingRun, *, by) -> None:
    require_admin(by, run.blend.project)
    cancel_job(run)


def train_from_export(
    export: ExportSnapshot,
    *,
    by,
    kind: str,
    base_model: str = "",
    config: dict[str, Any] | None = None,
    blend_options: dict[str, Any] | None = None,
) -> TrainingRun:
    """The "train" button: checks the settings and records the blend and the run that trains on it
    once it is built (``start_job(run.blend)`` builds it in a worker; its task then starts the run)."""
    _checked_settings(kind, config)
    blend = start_blend(export, by=by, options=blend_options)
    return start_training_run(blend, by=by, kind=kind, base_model=base_model, config=config)


def queue_training_from_export(export: ExportSnapshot, *, by, **options: Any) -> TrainingRun:
    """``train_from_export``, with the blend's build queued once the transaction commits (the
    training page and the API)."""
    with transaction.atomic():
        run = train_from_export(export, by=by, **options)
        start_job(run.blend)
    return run
