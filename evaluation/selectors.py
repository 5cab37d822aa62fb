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
