"""Evaluation runs: guards scored on benchmarks, one cell per guard × benchmark."""

from pathlib import Path

from django.db import models

from annotation.models import Project
from core.files import temporaries_under
from core.models import Job


class EvaluationRun(Job):
    """Guards × benchmarks with pinned options; progress is readable while it runs.

    ``guards``: the guard specs as resolved at start, in row order, each with its row ``name``
    (``{"guard": id}``, ``{"juror": id}``, ``{"endpoint": url, "model", "prompt_format"}``,
    ``{"predictions": path, "parser"}``). ``benchmarks``: the benchmark specs in column order, each
    with its column ``label`` (``{"name"}``, ``{"name", "export": id}``, ``{"name", "path"}``).
    ``options``: threshold, bootstrap, confidence, seed, limit, taxonomy, plots. ``results``:
    ``cells`` (one per guard × benchmark: the BinaryResult dict, per-category results where the
    benchmark has gold categories, or the error), ``benchmarks`` (what each column held), ``plots``.
    ``total`` and ``done`` count items (guards × benchmark items).
    """

    name = models.CharField(max_length=200, blank=True)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluation_runs",
        help_text="The project whose admins see the run (from its export, juror or guard).",
    )  # fmt: skip
    guards = models.JSONField(default=list)
    guard_models = models.ManyToManyField("training.GuardModel", blank=True, related_name="evaluation_runs")
    benchmarks = models.JSONField(default=list)
    options = models.JSONField(default=dict)
    results = models.JSONField(default=dict, blank=True)
    directory = models.CharField(max_length=500, blank=True, help_text="Predictions, reports and plots.")

    task_name = "evaluation.run"

    class Meta(Job.Meta):
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name or f"evaluation {self.pk}"

    def task_queue(self) -> str:
        from .services import evaluation_queue

        return evaluation_queue(self)

    def leftover_paths(self) -> list[Path]:
        return temporaries_under(Path(self.directory)) if self.directory else []

    @property
    def guard_names(self) -> list[str]:
        return [spec["name"] for spec in self.guards]

    @property
    def benchmark_labels(self) -> list[str]:
        return [spec["label"] for spec in self.benchmarks]

    @property
    def cells(self) -> list[dict]:
        return (self.results or {}).get("cells", [])
