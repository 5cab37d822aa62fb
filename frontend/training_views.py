"""Pages of training: train a guard from an export snapshot, watch runs, and the model registry."""

import json

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render

from annotation.models import ExportSnapshot, Project
from annotation.permissions import require_admin
from core.errors import ApplicationError
from core.selectors import worker_notice
from frontend.readable import settings_rows
from training.models import TrainerKind, TrainingRun
from training.selectors import (
    cuda_visible,
    default_trainer,
    guard_models_for,
    project_training_runs,
    trainable_exports,
)
from training.services import cancel_training_run, queue_training_from_export
from training.trainers.lora import LoraSettings
from training.trainers.minilm import MiniLMSettings

BLEND_SWITCHES = ("no_fine_grained", "no_refusals", "jury_labels_only")


def _form_options(form) -> dict:
    """The train form: trainer kind, base model, settings as JSON, and the blend's switches."""
    try:
        config = json.loads(form.get("config") or "{}")
    except json.JSONDecodeError as error:
        raise ApplicationError(f"settings: not JSON ({error.msg})") from None
    blend = {name: True for name in BLEND_SWITCHES if form.get(name)}
    if form.get("seed", "").strip():
        blend["seed"] = int(form["seed"]) if form["seed"].strip().isdigit() else form["seed"]
    if form.get("topic_following", "").strip():
        blend["topic_following"] = form["topic_following"].strip()
    return {
        "kind": form.get("kind", TrainerKind.MINILM),
        "base_model": form.get("base_model", "").strip(),
        "config": config,
        "blend_options": blend,
    }


@login_required
def training(request, pk: int):
    """Train buttons on the project's exports, and the runs with live progress and cancel."""
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    error = ""
    if request.method == "POST":
        try:
            if "cancel" in request.POST:
                run = get_object_or_404(TrainingRun, pk=int(request.POST["cancel"]), blend__project=project)
                cancel_training_run(run, by=request.user)
            else:
                export = get_object_or_404(ExportSnapshot, pk=int(request.POST["export"]), project=project)
                queue_training_from_export(export, by=request.user, **_form_options(request.POST))
            return redirect("frontend:training", pk=project.pk)
        except ApplicationError as problem:
            error = str(problem)
    runs = list(project_training_runs(project)[:50])
    context = {
        "project": project,
        "exports": trainable_exports(project)[:20],
        "runs": runs,
        "kinds": TrainerKind.choices,
        "default_kind": default_trainer(),
        "gpu": cuda_visible(),
        "switches": BLEND_SWITCHES,
        "defaults": {
            "minilm": json.dumps(MiniLMSettings().__dict__, default=list),
            "lora": json.dumps(LoraSettings().__dict__, default=list),
        },
        "running": any(run.status in ("pending", "running") for run in runs),
        "notice": worker_notice(),
        "error": error,
    }
    return render(request, "frontend/training.html", context)


@login_required
def guard_models(request):
    """The model registry: each guard with its run's data, settings, metrics and artifacts."""
    guards = [
        (
            guard,
            settings_rows(guard.run.config) if guard.run else [],
            settings_rows(guard.run.metrics) if guard.run else [],
        )
        for guard in guard_models_for(request.user)
    ]
    return render(request, "frontend/models.html", {"guards": guards})
