"""Routes of the evaluation API (included under api/ by config/urls.py): runs, reports, benchmarks."""

from django.urls import path

from . import api

urlpatterns = [
    path("evaluation-runs/", api.runs, name="evaluation-runs"),
    path("evaluation-runs/compare/", api.compare, name="evaluation-compare-report"),
    path("evaluation-runs/<int:run_id>/", api.run_detail, name="evaluation-run"),
    path("evaluation-runs/<int:run_id>/cancel/", api.cancel, name="evaluation-run-cancel"),
    path("evaluation-runs/<int:run_id>/report/", api.report, name="evaluation-run-report"),
    path("evaluation/benchmarks/", api.benchmarks, name="evaluation-benchmarks"),
]
