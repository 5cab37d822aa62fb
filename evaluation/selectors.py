"""Reads of evaluation: which runs a person sees, the choices of the start form."""

import functools
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from annotation.models import ExportSnapshot
from annotation.selectors import administered_projects

from .benchmarks import Benchmark, default_data_root, get_benchmark, shipped_benchmarks
from .models import EvaluationRun


def visible_runs(user) -> QuerySet[EvaluationRun]:
    """Staff see every run; project admins the runs they started and those of their projects."""
    runs = EvaluationRun.objects.select_related("project", "created_by")
    if user.is_staff:
        return runs
    return runs.filter(Q(created_by=user) | Q(project__in=administered_projects(user)))


def evaluable_exports(user) -> QuerySet[ExportSnapshot]:
    """Finished exports of the projects the user administers (their test splits are benchmarks)."""
    return (
        ExportSnapshot.objects.filter(project__in=administered_projects(user)).succeeded()
        .select_related("project")
        .order_by("-pk")
    )


# Each export benchmark: what it scores (as the start form names it) and the export's label column.
EXPORT_TASKS = {"export_prompt": ("prompts", "prompt_label"), "export_response": ("responses", "response_label")}


def export_title(export: ExportSnapshot) -> str:
    """An export as the pages name it."""
    return f"export {export.pk} of {export.project.slug}"


def _test_split_counts(export: ExportSnapshot) -> dict:
    return ((export.manifest or {}).get("counts") or {}).get("test") or {}


def labelled_test_rows(export: ExportSnapshot) -> dict[str, int]:
    """Rows of the export's test split with the label each export benchmark scores (from the
    row and label counts in the export's manifest)."""
    test = _test_split_counts(export)
    return {
        name: sum(count for value, count in (test.get(column) or {}).items() if value != "None")
        for name, (_, column) in EXPORT_TASKS.items()
    }


def export_task_gaps(export: ExportSnapshot) -> dict[str, str]:
    """Why the export's test split cannot serve an export benchmark, by benchmark name (a benchmark
    it can serve is absent)."""
    rows, labelled = _test_split_counts(export).get("rows"), labelled_test_rows(export)
    gaps = {}
    for name, (task, _) in EXPORT_TASKS.items():
        if not rows:
            gaps[name] = "its test split is empty (the export's split ratios gave it no rows)"
        elif not labelled[name]:
            gaps[name] = f"its test split has no {task[:-1]} labels"
    return gaps


@dataclass(frozen=True)
class ExportChoice:
    """An export on the start form: the benchmarks it offers (name, task, labelled rows) and why
    the others are not offered."""

    export: ExportSnapshot
    title: str
    offered: list[tuple[str, str, int]]
    missing: list[str]


def export_choices(exports) -> list[ExportChoice]:
    choices = []
    for export in exports:
        gaps, labelled = export_task_gaps(export), labelled_test_rows(export)
        offered = [(name, task, labelled[name]) for name, (task, _) in EXPORT_TASKS.items() if name not in gaps]
        missing = [f"no {EXPORT_TASKS[name][0]} benchmark: {why}" for name, why in gaps.items()]
        choices.append(ExportChoice(export, export_title(export), offered, missing))
    return choices


def evaluable_jurors(user):
    from jury.models import Juror

    return Juror.objects.filter(project__in=administered_projects(user), active=True).select_related("project")


def evaluable_guards(user):
    from training.selectors import guard_models_for

    return guard_models_for(user).order_by("name")


@dataclass(frozen=True)
class BenchmarkChoice:
    benchmark: Benchmark
    items: int | None


def shipped_benchmark_choices() -> list[BenchmarkChoice]:
    """The shipped benchmarks with their sizes (the files are small and read in well under a second)."""
    root = str(default_data_root())
    return [BenchmarkChoice(benchmark, _shipped_size(benchmark.name, root)) for benchmark in shipped_benchmarks()]


@functools.lru_cache(maxsize=64)
def _shipped_size(name: str, root: str) -> int | None:
    try:
        return len(get_benchmark(name).load(data_root=root))
    except (OSError, ValueError):
        return None
