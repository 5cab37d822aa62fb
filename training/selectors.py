"""Reads of the training app."""

from pathlib import Path

from django.db.models import QuerySet

from annotation.models import ExportSnapshot, Project
from annotation.selectors import administered_projects

from .models import GuardModel, TrainerKind, TrainingRun

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def cuda_visible() -> bool:
    """Whether this machine shows an NVIDIA GPU, read from the driver without importing torch."""
    return NVIDIA_GPUS.is_dir() and any(NVIDIA_GPUS.iterdir())


def default_trainer() -> str:
    """The trainer the training page offers first: LoRA where there is a GPU, else the CPU guard."""
    return TrainerKind.LORA if cuda_visible() else TrainerKind.MINILM


def project_training_runs(project: Project) -> QuerySet[TrainingRun]:
    return TrainingRun.objects.filter(blend__project=project).select_related("blend", "blend__export", "guard")


def trainable_exports(project: Project) -> QuerySet[ExportSnapshot]:
    return ExportSnapshot.objects.filter(project=project).succeeded().order_by("-pk")


def guard_models_for(user) -> QuerySet[GuardModel]:
    """Guards whose run belongs to a project the user administers, and guards registered without one."""
    visible = administered_projects(user)
    return GuardModel.objects.select_related("run", "run__blend", "run__blend__export").filter(
        run__blend__project__in=visible
    ) | GuardModel.objects.filter(run__isnull=True)
