"""Training blends (versioned training data made from an export), training runs and the
registry of guard models they produce."""

from pathlib import Path

from django.db import models

from annotation.models import ExportSnapshot, Project
from core.files import temporaries_of
from core.models import Job
from guards.formats.registry import guard_format_choices


class TrainingBlend(Job):
    """An export rendered into guard training examples (NemoGuard prompt + target JSON), with
    augmentation, ablations and an optional topic-following blend; files + manifest on disk.
    Built in a worker; ``directory`` is chosen when it is recorded."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_blends")
    export = models.ForeignKey(ExportSnapshot, on_delete=models.PROTECT, related_name="blends")
    options = models.JSONField(default=dict)
    directory = models.CharField(max_length=500, blank=True)
    manifest = models.JSONField(null=True, blank=True)

    task_name = "training.build_blend"

    def leftover_paths(self) -> list[Path]:
        return temporaries_of(Path(self.directory)) if self.directory else []

    def __str__(self) -> str:
        return f"blend {self.pk} of export {self.export_id}"


class TrainerKind(models.TextChoices):
    LORA = "lora", "LoRA on a causal LM (NemoGuard JSON answers)"
    MINILM = "minilm", "MiniLM classifier with LoRA (CPU guard)"


class TrainingRun(Job):
    """One training job on a blend; progress (``done`` of ``total`` optimiser steps, also readable as
    ``step`` and ``total_steps``) is readable while it runs."""

    blend = models.ForeignKey(TrainingBlend, on_delete=models.PROTECT, related_name="runs")
    kind = models.CharField(max_length=10, choices=TrainerKind.choices)
    base_model = models.CharField(max_length=300, help_text="Hugging Face id or local path.")
    config = models.JSONField(default=dict)
    loss = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    directory = models.CharField(max_length=500, blank=True)

    task_name = "training.run"

    @property
    def step(self) -> int:
        return self.done

    @property
    def total_steps(self) -> int:
        return self.total

    def task_queue(self) -> str:
        """LoRA runs go to the ``gpu`` queue; the MiniLM CPU guard to ``default``."""
        return "gpu" if self.kind == TrainerKind.LORA else "default"


class GuardModel(models.Model):
    """A guard in the registry: an adapter we trained, or a published guard named by path/id."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=TrainerKind.choices)
    base_model = models.CharField(max_length=300)
    path = models.CharField(max_length=500, help_text="Adapter or model folder.")
    prompt_format = models.CharField(max_length=20, choices=guard_format_choices, default="nemoguard")
    run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="guard")
    taxonomy = models.ForeignKey("taxonomy.Taxonomy", null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name
