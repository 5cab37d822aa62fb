"""Pages for people, one route per page, each pointing at its page module."""

from django.urls import path

from . import console_views, evaluation_views, jury_views, moderation_views, training_views, views

app_name = "frontend"
urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:pk>/label/", views.label, name="label"),
    path("projects/<int:pk>/dashboard/", views.dashboard, name="dashboard"),
    path("projects/<int:pk>/agreement/", views.agreement, name="agreement"),
    path("projects/<int:pk>/review/", views.review, name="review"),
    path("projects/<int:pk>/qa/", views.qa, name="qa"),
    path("projects/<int:pk>/jury/", jury_views.jury_jobs, name="jury-jobs"),
    path("projects/<int:pk>/training/", training_views.training, name="training"),
    path("models/", training_views.guard_models, name="models"),
    path("evaluation/", evaluation_views.evaluation, name="evaluation"),
    path("evaluation/compare/", evaluation_views.evaluation_compare, name="evaluation-compare"),
    path("evaluation/<int:run_id>/", evaluation_views.evaluation_run, name="evaluation-run"),
    path("evaluation/<int:run_id>/plots/<str:name>", evaluation_views.evaluation_plot, name="evaluation-plot"),
    path("moderation/", moderation_views.ensembles, name="moderation-list"),
    path("moderation/<slug:slug>/", moderation_views.ensemble, name="moderation"),
    path("projects/<int:pk>/agreement/<int:report_id>/<str:name>.png", views.agreement_plot, name="agreement-plot"),
    path("console/", console_views.home, name="console"),
    path("console/projects/<int:pk>/members/", console_views.members, name="console-members"),
    path("console/projects/<int:pk>/imports/", console_views.imports, name="console-imports"),
    path("console/imports/<int:batch_id>/", console_views.import_progress, name="console-import"),
    path("console/imports/<int:batch_id>/status.json", console_views.import_progress_json, name="console-import-json"),
    path("console/projects/<int:pk>/queue/", console_views.queue, name="console-queue"),
    path("console/projects/<int:pk>/exports/", console_views.exports, name="console-exports"),
    path(
        "console/exports/<int:snapshot_id>/files/<str:name>",
        console_views.export_download,
        name="console-export-file",
    ),
    path("console/projects/<int:pk>/samples/", console_views.samples, name="console-samples"),
    path("console/projects/<int:pk>/samples/<int:sample_id>/", console_views.sample_detail, name="console-sample"),
    path(
        "projects/<int:pk>/agreement/<int:report_id>/<str:name>/<str:field>.png",
        views.agreement_plot,
        name="agreement-field-plot",
    ),
]
