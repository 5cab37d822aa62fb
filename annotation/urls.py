"""Routes of the annotation API (included under api/ by config/urls.py): projects, imports and
exports (viewsets), and the labelling work: members, batches, assignments, review, QA, agreement."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api_labelling
from .api_projects import ExportSnapshotViewSet, ImportBatchViewSet, ProjectViewSet

router = SimpleRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("imports", ImportBatchViewSet, basename="import")
router.register("exports", ExportSnapshotViewSet, basename="export")

# The labelling loop's two routes come first: Django tries patterns in order, and every pattern
# tried before a match (the routers' regexes above all) costs each request of the loop CPU.
urlpatterns = [
    path("projects/<int:pk>/next/", api_labelling.NextItem.as_view(), name="project-next"),
    path("assignments/<int:assignment_id>/submit/", api_labelling.Submit.as_view(), name="assignment-submit"),
    *router.urls,
    path("projects/<int:pk>/members/", api_labelling.members, name="project-members"),
    path("projects/<int:pk>/batches/", api_labelling.batches, name="project-batches"),
    path("projects/<int:pk>/my-labels/", api_labelling.my_labels, name="project-my-labels"),
    path("projects/<int:pk>/dashboard/", api_labelling.dashboard, name="project-dashboard"),
    path("projects/<int:pk>/agreement/", api_labelling.agreement, name="project-agreement"),
    path("projects/<int:pk>/review/", api_labelling.review_queue, name="project-review"),
    path("projects/<int:pk>/qa/next/", api_labelling.qa_next, name="project-qa-next"),
    path("projects/<int:pk>/qa/<int:assignment_id>/", api_labelling.qa_check, name="project-qa-check"),
    path("projects/<int:pk>/review/<int:sample_id>/", api_labelling.adjudicate, name="project-adjudicate"),
    path("assignments/<int:assignment_id>/", api_labelling.assignment_detail, name="assignment-detail"),
    path("assignments/<int:assignment_id>/skip/", api_labelling.skip, name="assignment-skip"),
    path("assignments/<int:assignment_id>/flag/", api_labelling.flag, name="assignment-flag"),
    path("assignments/<int:assignment_id>/history/", api_labelling.history, name="assignment-history"),
]
