"""Pages of evaluation (project admins and staff): start a run (guards from the registry and
jurors, shipped benchmarks and the test splits of exports), watch its progress, cancel it, read
the paper-style table with its notes and plots, download it, and compare runs."""

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render

from core.selectors import worker_notice
from evaluation import reports, selectors, services
from evaluation.models import EvaluationRun
from evaluation.permissions import require_evaluator, require_run_access
from evaluation.services import EvaluationError
from taxonomy.models import Taxonomy


def _number(form, name: str, kind=float):
    text = (form.get(name) or "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise EvaluationError(f"{name}: {text!r} is not a number") from None


def _form_run(form) -> dict:
    """The start form: guards (``guard:ID``, ``juror:ID``), benchmarks (``NAME``, ``export_prompt:ID``), options."""
    guards = []
    for value in form.getlist("guard"):
        kind, _, key = value.partition(":")
        if kind not in ("guard", "juror") or not key.isdigit():
            raise EvaluationError(f"guard {value!r}: not a choice of this form")
        guards.append({kind: int(key)})
    benchmarks = []
    for value in form.getlist("benchmark"):
        name, _, export = value.partition(":")
        benchmarks.append({"name": name, "export": int(export)} if export.isdigit() else {"name": name})
    options = {
        "threshold": _number(form, "threshold"),
        "bootstrap": _number(form, "bootstrap", int),
        "limit": _number(form, "limit", int),
        "taxonomy": (form.get("taxonomy") or "").strip() or None,
        "plots": True,
    }
    return {
        "name": (form.get("name") or "").strip()[:200],
        "guards": guards,
        "benchmarks": benchmarks,
        "options": {key: value for key, value in options.items() if value is not None},
    }


@login_required
def evaluation(request):
    """The start form and the runs the person may see (with their progress and a cancel button)."""
    require_evaluator(request.user)
    error = ""
    if request.method == "POST":
        try:
            if "cancel" in request.POST:
                run = get_object_or_404(EvaluationRun, pk=int(request.POST["cancel"]))
                services.cancel_evaluation_run(run, by=request.user)
                return redirect("frontend:evaluation")
            run = services.queue_evaluation_run(by=request.user, **_form_run(request.POST))
            return redirect("frontend:evaluation-run", run_id=run.pk)
        except EvaluationError as problem:
            error = str(problem)
    exports = selectors.evaluable_exports(request.user)
    jurors = selectors.evaluable_jurors(request.user)
    project = request.GET.get("project", "")
    if project.isdigit():
        exports, jurors = exports.filter(project_id=int(project)), jurors.filter(project_id=int(project))
    runs = list(selectors.visible_runs(request.user)[:100])
    context = {
        "guards": selectors.evaluable_guards(request.user),
        "jurors": jurors,
        "benchmarks": selectors.shipped_benchmark_choices(),
        "exports": selectors.export_choices(exports[:20]),
        "taxonomies": Taxonomy.objects.order_by("slug", "version"),
        "defaults": services.DEFAULT_OPTIONS,
        "runs": runs,
        "running": any(run.status in ("pending", "running") for run in runs),
        "notice": worker_notice(),
        "error": error,
        "form": request.POST if request.method == "POST" else None,
    }
    return render(request, "frontend/evaluation.html", context)


def _cell_rows(run: EvaluationRun) -> list[dict]:
    """Every cell's numbers for the details table, in row and column order."""
    table = reports.table_for_runs([run])
    rows = []
    for row in table.rows:
        for column, cell in zip(table.columns, row.cells):
            if cell is not None:
                result = cell.get("result") or {}
                interval = (result.get("intervals") or {}).get("f1")
                rows.append({"guard": row.label, "benchmark": column.label, "cell": cell, "result": result,
                             "interval": interval})  # fmt: skip
    return rows


@login_required
def evaluation_run(request, run_id: int):
    run = get_object_or_404(EvaluationRun.objects.select_related("project", "created_by"), pk=run_id)
    require_run_access(request.user, run)
    if request.method == "POST" and "cancel" in request.POST:
        services.cancel_evaluation_run(run, by=request.user)
        return redirect("frontend:evaluation-run", run_id=run.pk)
    table = reports.table_for_runs([run])
    taxonomy = Taxonomy.objects.filter(pk=run.options.get("taxonomy")).first() if run.options.get("taxonomy") else None
    context = {
        "run": run,
        "table": table,
        "rows": _formatted_rows(table),
        "cells": _cell_rows(run),
        "plots": (run.results or {}).get("plots", []),
        "taxonomy": taxonomy,
        "percent": round(100 * run.done / run.total) if run.total else 0,
        "running": run.status in ("pending", "running"),
        "notice": worker_notice() if run.status == "pending" else "",
    }
    return render(request, "frontend/evaluation_run.html", context)


@login_required
def evaluation_plot(request, run_id: int, name: str):
    run = get_object_or_404(EvaluationRun, pk=run_id)
    require_run_access(request.user, run)
    if name not in (run.results or {}).get("plots", []) or not run.directory:
        raise Http404("no such plot")
    file = Path(run.directory) / "plots" / name
    if not file.is_file():
        raise Http404("no such plot")
    return FileResponse(file.open("rb"), content_type="image/png")


def _formatted_rows(table) -> list[tuple]:
    """Each row of a report table with its F1 cells and average as the paper prints them."""
    return [(row, [reports.format_f1(value) for value in row.f1], reports.format_f1(row.average)) for row in table.rows]


@login_required
def evaluation_compare(request):
    """Rows of several runs in one table (the runs chosen on the list page)."""
    require_evaluator(request.user)
    try:
        runs = services.runs_to_compare(request.user, request.GET.getlist("runs"))
    except EvaluationError as problem:
        raise Http404(str(problem)) from None
    table = reports.table_for_runs(runs)
    context = {
        "runs": runs,
        "table": table,
        "rows": _formatted_rows(table),
        "ids": ",".join(str(run.pk) for run in runs),
    }
    return render(request, "frontend/evaluation_compare.html", context)

