"""Routes of the training API (included under api/ by config/urls.py): runs and the guard registry."""

from django.urls import path

from . import api

urlpatterns = [
    path("exports/<int:export_id>/train/", api.train, name="export-train"),
    path("projects/<int:pk>/training-runs/", api.project_runs, name="project-training-runs"),
    path("training-runs/<int:run_id>/", api.run_detail, name="training-run"),
    path("training-runs/<int:run_id>/cancel/", api.cancel, name="training-run-cancel"),
    path("guard-models/", api.guard_models, name="guard-models"),
]
