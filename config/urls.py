from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from annotation import api_work
from annotation.api import ExportSnapshotViewSet, ImportBatchViewSet, ProjectViewSet
from core.token_api import obtain_auth_token
from evaluation import api as evaluation_api
from jury import api as jury_api
from moderation import api as moderation_api
from taxonomy.api import TaxonomyViewSet
from training import api as training_api

router = DefaultRouter()
router.include_format_suffixes = False  # export file names carry their own suffix (train.jsonl)
router.register("taxonomies", TaxonomyViewSet, basename="taxonomy")
router.register("projects", ProjectViewSet, basename="project")
router.register("imports", ImportBatchViewSet, basename="import")
router.register("exports", ExportSnapshotViewSet, basename="export")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(router.urls)),
    path("api/projects/<int:pk>/members/", api_work.members, name="project-members"),
    path("api/projects/<int:pk>/batches/", api_work.batches, name="project-batches"),
    path("api/projects/<int:pk>/next/", api_work.next_item, name="project-next"),
    path("api/projects/<int:pk>/my-labels/", api_work.my_labels, name="project-my-labels"),
    path("api/projects/<int:pk>/dashboard/", api_work.dashboard, name="project-dashboard"),
    path("api/projects/<int:pk>/agreement/", api_work.agreement, name="project-agreement"),
    path("api/projects/<int:pk>/review/", api_work.review_queue, name="project-review"),
    path("api/projects/<int:pk>/qa/next/", api_work.qa_next, name="project-qa-next"),
    path("api/projects/<int:pk>/qa/<int:assignment_id>/", api_work.qa_check, name="project-qa-check"),
    path("api/projects/<int:pk>/review/<int:sample_id>/", api_work.adjudicate, name="project-adjudicate"),
    path("api/assignments/<int:assignment_id>/", api_work.assignment_detail, name="assignment-detail"),
    path("api/assignments/<int:assignment_id>/submit/", api_work.submit, name="assignment-submit"),
    path("api/assignments/<int:assignment_id>/skip/", api_work.skip, name="assignment-skip"),
    path("api/assignments/<int:assignment_id>/flag/", api_work.flag, name="assignment-flag"),
    path("api/assignments/<int:assignment_id>/history/", api_work.history, name="assignment-history"),
    path("api/projects/<int:pk>/jurors/", jury_api.jurors, name="project-jurors"),
    path("api/projects/<int:pk>/jury-jobs/", jury_api.jobs, name="project-jury-jobs"),
    path("api/jury-jobs/<int:job_id>/", jury_api.job_detail, name="jury-job"),
    path("api/jury-jobs/<int:job_id>/cancel/", jury_api.cancel, name="jury-job-cancel"),
    path("api/exports/<int:export_id>/train/", training_api.train, name="export-train"),
    path("api/projects/<int:pk>/training-runs/", training_api.project_runs, name="project-training-runs"),
    path("api/training-runs/<int:run_id>/", training_api.run_detail, name="training-run"),
    path("api/training-runs/<int:run_id>/cancel/", training_api.cancel, name="training-run-cancel"),
    path("api/guard-models/", training_api.guard_models, name="guard-models"),
    path("api/evaluation-runs/", evaluation_api.runs, name="evaluation-runs"),
    path("api/evaluation-runs/compare/", evaluation_api.compare, name="evaluation-compare-report"),
    path("api/evaluation-runs/<int:run_id>/", evaluation_api.run_detail, name="evaluation-run"),
    path("api/evaluation-runs/<int:run_id>/cancel/", evaluation_api.cancel, name="evaluation-run-cancel"),
    path("api/evaluation-runs/<int:run_id>/report/", evaluation_api.report, name="evaluation-run-report"),
    path("api/evaluation/benchmarks/", evaluation_api.benchmarks, name="evaluation-benchmarks"),
    path("api/projects/<int:pk>/generation-jobs/", jury_api.generation_jobs, name="project-generation-jobs"),
    path("api/generation-jobs/<int:job_id>/", jury_api.generation_job_detail, name="generation-job"),
    path("api/generation-jobs/<int:job_id>/cancel/", jury_api.cancel_generation, name="generation-job-cancel"),
    path("api/moderation/ensembles/", moderation_api.ensembles, name="moderation-ensembles"),
    path("api/moderation/decisions/<int:decision_id>/feedback/", moderation_api.feedback, name="moderation-feedback"),
    path("api/moderation/<slug:slug>/", moderation_api.moderate, name="moderation"),
    path("api/moderation/<slug:slug>/decisions/", moderation_api.decisions, name="moderation-decisions"),
    path("api/moderation/<slug:slug>/history/", moderation_api.history, name="moderation-history"),
    path("api/auth/token/", obtain_auth_token, name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="frontend/swagger_ui.html"),
        name="api-docs",
    ),
    path("api-auth/", include("rest_framework.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("frontend.urls")),
]
